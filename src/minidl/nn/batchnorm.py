"""BatchNorm1d: normalise each channel with the batch's statistics (train) or running ones (eval)."""

from __future__ import annotations

import torch

from minidl.errors import ConfigError, ShapeError
from minidl.nn.module import Module
from minidl.nn.parameter import Parameter


class BatchNorm1d(Module):
    """y = (x − μ) / √(σ² + eps) · weight + bias per channel, for inputs (N, C) or (N, C, L).

    Train mode uses the batch mean μ and biased variance σ² over N (and L), and updates the buffers as
    PyTorch's BatchNorm1d: running ← (1 − m)·running + m·batch, with the *unbiased* batch variance for
    running_var, and m = 1 / num_batches_tracked when ``momentum`` is None (a cumulative average).
    Eval mode uses running_mean and running_var (the batch's if ``track_running_stats=False``).
    ``bias=False`` (with ``affine=True``) learns a scale only, as in recent torch. State dict keys are
    torch's: weight, bias, running_mean, running_var, num_batches_tracked.
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        bias: bool = True,
    ) -> None:
        if isinstance(num_features, bool) or not isinstance(num_features, int) or num_features < 1:
            raise ConfigError(f"BatchNorm1d: num_features must be a positive integer, got {num_features!r}")
        if not eps > 0:
            raise ConfigError(f"BatchNorm1d: eps must be positive, got {eps!r}")
        if momentum is not None and not 0 <= momentum <= 1:
            raise ConfigError(f"BatchNorm1d: momentum must be in [0, 1] or None, got {momentum!r}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        factory = {"device": device, "dtype": dtype}
        self.weight = Parameter(torch.ones(num_features, **factory)) if affine else None
        self.bias = Parameter(torch.zeros(num_features, **factory)) if affine and bias else None
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features, **factory))
            self.register_buffer("running_var", torch.ones(num_features, **factory))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long, device=device))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def _dims(self, x: torch.Tensor) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Dimensions reduced over, and the shape that broadcasts a (C,) vector against x."""
        if x.dim() not in (2, 3) or x.shape[1] != self.num_features:
            raise ShapeError(
                f"{self._name()}: expected input of shape (N, {self.num_features}) or "
                f"(N, {self.num_features}, L), got {tuple(x.shape)}"
            )
        return ((0,), (1, -1)) if x.dim() == 2 else ((0, 2), (1, -1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (N, C) or (N, C, L) -> same shape
        dims, shape = self._dims(x)
        use_batch = self.training or self.running_mean is None
        if use_batch:
            n = x.numel() // self.num_features
            if n <= 1:
                raise ShapeError(
                    f"{self._name()}: expected more than 1 value per channel to compute batch statistics, "
                    f"got input of shape {tuple(x.shape)}"
                )
            mean = x.mean(dims)
            var = x.var(dims, correction=0)  # biased: normalise with the batch's own spread
            if self.training and self.running_mean is not None:
                self._update_running(mean, var, n)
        else:
            mean, var = self.running_mean, self.running_var
        inv_std = torch.rsqrt(var + self.eps)
        x_hat = (x - mean.reshape(shape)) * inv_std.reshape(shape)
        self.save_for_backward(x_hat, inv_std, use_batch)
        y = x_hat if self.weight is None else x_hat * self.weight.data.reshape(shape)
        return y if self.bias is None else y + self.bias.data.reshape(shape)

    def _update_running(self, mean: torch.Tensor, var: torch.Tensor, n: int) -> None:
        self.num_batches_tracked.add_(1)
        m = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
        unbiased = var * (n / (n - 1))
        self.running_mean.mul_(1 - m).add_(mean, alpha=m)
        self.running_var.mul_(1 - m).add_(unbiased, alpha=m)

    def backward(self, grad_output: torch.Tensor) -> torch.Tensor:
        x_hat, inv_std, use_batch = self.saved_for_backward()
        dims, shape = self._dims(grad_output)
        # dL/dbias = Σ g and dL/dweight = Σ g·x̂ over N (and L); ĝ = g·weight is the gradient w.r.t. x̂
        if self.bias is not None:
            self.bias.accumulate_grad(grad_output.sum(dims))
        if self.weight is not None:
            self.weight.accumulate_grad((grad_output * x_hat).sum(dims))
            g_hat = grad_output * self.weight.data.reshape(shape)
        else:
            g_hat = grad_output
        if not use_batch:  # running statistics are constants: the map is affine in x
            return g_hat * inv_std.reshape(shape)
        # through the batch mean and variance: dL/dx = (ĝ − mean(ĝ) − x̂·mean(ĝ·x̂)) / √(σ² + eps)
        centred = g_hat - g_hat.mean(dims, keepdim=True) - x_hat * (g_hat * x_hat).mean(dims, keepdim=True)
        return centred * inv_std.reshape(shape)

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}"
        )
