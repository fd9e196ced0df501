"""Data parallelism with torch.distributed: gloo on CPU, nccl on CUDA, processes started by torchrun.

Every rank holds the whole model and the whole data set and walks the same shuffled global batches.
Rank ``r`` of ``N`` takes its contiguous share of each global batch (``shard_bounds``), computes the
gradient of its share, and one all-reduce of one flat gradient buffer per step gives every rank the
gradient of the mean loss over the global batch, so every rank takes the same optimizer step:

    g = Σ_r (n_r / B) · ∇ mean_{i in share r} ℓ_i  =  ∇ (1/B) Σ_i ℓ_i

minidl never opens a socket itself: rendezvous and transport are torch.distributed's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

from minidl.device import resolve_device
from minidl.distributed.flat_grads import flat_gradients
from minidl.errors import ConfigError
from minidl.nn.module import Module
from minidl.nn.parameter import Parameter

TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: its rank among ``world_size`` and the device it computes on."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: str | None = None  # None: a single process, no process group

    @property
    def is_main(self) -> bool:
        """Rank 0 prints, writes the run folder and the checkpoints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.backend is not None

    def main_only(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` on rank 0, a no-op elsewhere: wrap printing and file-writing callbacks with it."""

        def call(*args: Any, **kwargs: Any) -> Any:
            return fn(*args, **kwargs) if self.is_main else None

        return call

    def close(self) -> None:
        """Leave the process group (a no-op for a single process)."""
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()

    def __enter__(self) -> DistContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _env_int(name: str) -> int:
    value = os.environ[name]
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be an integer, got {value!r}") from None


def init_from_env(device: str | torch.device = "auto", *, timeout: float | None = None) -> DistContext:
    """Join the process group that torchrun describes in the environment, or run as one process.

    Without ``WORLD_SIZE`` in the environment (a plain ``minidl train``) this starts nothing and returns a
    single-process context on ``resolve_device(device)``. Under torchrun, CUDA runs one process per GPU
    (``cuda:LOCAL_RANK``) with nccl; the CPU uses gloo. ``timeout`` (seconds) bounds each collective.
    """
    if "WORLD_SIZE" not in os.environ:
        return DistContext(device=resolve_device(device))
    missing = [name for name in TORCHRUN_ENV if not os.environ.get(name)]
    if missing:
        raise ConfigError(
            f"WORLD_SIZE is set but {', '.join(missing)} is not: start data-parallel runs with torchrun "
            "(or minidl train --nproc N)"
        )
    rank, world_size, local_rank = _env_int("RANK"), _env_int("WORLD_SIZE"), _env_int("LOCAL_RANK")
    if world_size < 1 or not 0 <= rank < world_size:
        raise ConfigError(f"invalid torchrun environment: RANK={rank}, WORLD_SIZE={world_size}")
    target, backend = parallel_device(device, world_size, local_rank)
    if target.type == "cuda":
        torch.cuda.set_device(target)
    if not dist.is_available():
        raise ConfigError("this build of torch has no torch.distributed")
    if not dist.is_initialized():
        kwargs: dict[str, Any] = {"timeout": timedelta(seconds=timeout)} if timeout is not None else {}
        dist.init_process_group(backend, init_method="env://", rank=rank, world_size=world_size, **kwargs)
    return DistContext(rank, world_size, local_rank, target, backend)


def parallel_device(device: str | torch.device, world_size: int, local_rank: int) -> tuple[torch.device, str]:
    """The device and backend of process ``local_rank`` on its machine: ``cuda:LOCAL_RANK`` with nccl, or the
    CPU with gloo; a ``ConfigError`` for any other device or too few GPUs (checked before torchrun starts, too)."""
    target = resolve_device(device)
    if target.type == "cuda":
        if target.index is not None and world_size > 1:
            raise ConfigError(
                f"device {str(device)!r}: under torchrun each process uses cuda:LOCAL_RANK; pass 'cuda', not an index"
            )
        if target.index is not None:  # one process, on the GPU it names
            return target, "nccl"
        count = torch.cuda.device_count()
        if local_rank >= count:
            raise ConfigError(
                f"LOCAL_RANK is {local_rank} but only {count} CUDA device(s) are visible (one process per GPU)"
            )
        return torch.device("cuda", local_rank), "nccl"
    if target.type == "cpu":
        return target, "gloo"
    raise ConfigError(f"data-parallel training supports cpu (gloo) and cuda (nccl), not {target.type!r}")


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def shard_bounds(batch_size: int, world_size: int, rank: int) -> tuple[int, int]:
    """Rows ``[start, stop)`` of a global batch that ``rank`` takes: an even contiguous split.

    The first ``batch_size % world_size`` ranks take one row more (as ``torch.tensor_split``); a rank's
    share is empty only when the batch has fewer rows than there are ranks.
    """
    base, extra = divmod(batch_size, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


def all_reduce_gradients(
    params: Iterable[Parameter], local_count: int, global_count: int, *, mean: bool = True
) -> torch.Tensor:
    """Turn each rank's gradient of its share into the gradient over the global batch, on every rank.

    With a mean-reduced loss each rank holds ∇ mean over its ``local_count`` rows; scaling it by
    ``local_count / global_count`` before the all-reduce (SUM) gives exactly ∇ mean over the
    ``global_count`` rows, however unevenly they were split. A rank with an empty share passes zero grads
    and ``local_count=0`` and still takes part. ``mean=False`` (a sum-reduced loss) sums unscaled.
    Returns the flat gradient buffer (one collective per call; a no-op without a process group).
    """
    return all_reduce_flat(flat_gradients(params), local_count, global_count, mean=mean)


def all_reduce_flat(flat: torch.Tensor, local_count: int, global_count: int, *, mean: bool = True) -> torch.Tensor:
    """``all_reduce_gradients`` on a flat gradient buffer (``DistributedTrainer`` passes the optimizer's own)."""
    if global_count < 1 or not 0 <= local_count <= global_count:
        raise ConfigError(f"all_reduce_gradients: local_count={local_count}, global_count={global_count}")
    if mean and local_count != global_count:
        flat.mul_(local_count / global_count)
    if _active():
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    return flat


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The element-wise sum of ``tensor`` over all ranks, as a new tensor (metrics: loss sums, counts)."""
    out = tensor.detach().clone()
    if _active():
        on = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else out.device
        moved = out.to(on)
        dist.all_reduce(moved, op=dist.ReduceOp.SUM)
        out = moved.to(tensor.device)
    return out


def broadcast_parameters(model: Module, src: int = 0) -> None:
    """Copy rank ``src``'s parameters and buffers into every rank's model, one collective per dtype."""
    if not _active():
        return
    tensors = [p.data for p in model.parameters()] + [b for _, b in model.named_buffers()]
    groups: dict[tuple[torch.dtype, torch.device], list[torch.Tensor]] = {}
    for t in tensors:
        groups.setdefault((t.dtype, t.device), []).append(t)
    for group in groups.values():
        flat = torch.cat([t.reshape(-1) for t in group])
        dist.broadcast(flat, src=src)
        offset = 0
        for t in group:
            t.copy_(flat[offset : offset + t.numel()].view(t.shape))
            offset += t.numel()
