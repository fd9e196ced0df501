"""JAX columns of benchmark cases 1 and 2: a per-sample ``jax.jit`` step, and a whole epoch as one ``lax.scan``.

Imported only by ``benchmarks/cases.py`` when a JAX framework is measured, so that nothing else needs JAX
(``pip install -e '.[bench]'`` installs it). The model is the seed MLP written as a function of its weights,
starting from the same initial weights as minidl and torch.nn (the saved state_dict), trained on the same
data in the same batch order (minidl's seeded ``DataLoader`` permutation, one per epoch). The gradient
comes from ``jax.grad`` (JAX is a baseline here, like torch.autograd); SGD and Adam are torch.optim's
update rules with their default hyperparameters, written out.

``jax-jit``: one jitted step, called once per batch from Python (as minidl and torch.nn run).
``jax-scan``: one jitted epoch, ``lax.scan`` over the full batches; the short last batch of case 2 (1000 =
31·32 + 8) is one more call of the jitted step. Compilation happens in one epoch on a throwaway copy before
the clock starts (as the other frameworks' warm-up); that epoch's time, compilation included, is reported
apart as ``warmup_seconds``.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import torch

jax.config.update("jax_platforms", "cpu")

ACTIVATIONS = {"relu": jax.nn.relu, "tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid}


def params_from_state_dict(state: dict[str, torch.Tensor]) -> list[tuple[jax.Array, jax.Array]]:
    """``[(weight, bias), …]`` in layer order from a torch-layout state_dict (``0.weight``, ``0.bias``, …)."""
    indices = sorted({int(key.split(".")[0]) for key in state})
    return [(jnp.asarray(state[f"{i}.weight"].numpy()), jnp.asarray(state[f"{i}.bias"].numpy())) for i in indices]


def make_forward(activations: list[str]):
    acts = [ACTIVATIONS[a] for a in activations]

    def forward(params, x):
        # x: (N, in_features) -> (N, out_features); weights in torch's (out_features, in_features) layout
        for (weight, bias), act in zip(params[:-1], acts, strict=True):
            x = act(x @ weight.T + bias)
        weight, bias = params[-1]
        return x @ weight.T + bias

    return forward


def mse(output, target):
    return jnp.mean((output - target) ** 2)


def bce_with_logits(output, target):
    return jnp.mean(jnp.maximum(output, 0) - output * target + jnp.log1p(jnp.exp(-jnp.abs(output))))


def sgd(lr: float):
    """torch.optim.SGD without momentum: p ← p − lr·g."""

    def init(params):
        return ()

    def update(params, grads, state):
        return jax.tree.map(lambda p, g: p - lr * g, params, grads), state

    return init, update


def adam(lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
    """torch.optim.Adam: m ← β1 m + (1−β1) g; v ← β2 v + (1−β2) g²;
    p ← p − lr/(1−β1ᵗ) · m / (√v / √(1−β2ᵗ) + ε)."""
    beta1, beta2 = betas

    def init(params):
        zeros = jax.tree.map(jnp.zeros_like, params)
        return (jnp.zeros((), jnp.float32), zeros, zeros)

    def update(params, grads, state):
        step, m, v = state
        step = step + 1
        m = jax.tree.map(lambda m, g: beta1 * m + (1 - beta1) * g, m, grads)
        v = jax.tree.map(lambda v, g: beta2 * v + (1 - beta2) * g * g, v, grads)
        step_size = lr / (1 - beta1**step)
        root_bc2 = jnp.sqrt(1 - beta2**step)
        params = jax.tree.map(lambda p, m, v: p - step_size * m / (jnp.sqrt(v) / root_bc2 + eps), params, m, v)
        return params, (step, m, v)

    return init, update


def make_step(forward, loss, update):
    def step(carry, batch):
        params, state = carry
        xb, tb = batch
        value, grads = jax.value_and_grad(lambda p: loss(forward(p, xb), tb))(params)
        params, state = update(params, grads, state)
        return (params, state), value

    return step


def make_epoch(mode: str, case: dict, n: int):
    """``(run_epoch, init, predict)``: ``run_epoch(carry, xe, te) -> (carry, summed loss)`` over ``n`` samples
    in batches of ``case["batch_size"]``, with carry ``(params, init(params))``; ``predict(params, x)``."""
    forward = make_forward(case["activations"])
    loss = {"mse": mse, "bce_logits": bce_with_logits}[case["loss"]]
    init, update = {"sgd": sgd, "adam": adam}[case["optimizer"]](case["lr"])
    step_fn = make_step(forward, loss, update)
    step = jax.jit(step_fn)
    epoch_scan = jax.jit(lambda carry, xs, ts: jax.lax.scan(step_fn, carry, (xs, ts)))
    b = case["batch_size"]
    full = n // b

    def run_epoch(carry, xe: np.ndarray, te: np.ndarray):
        if mode == "jit":
            total = 0.0
            for i in range(0, n, b):
                carry, value = step(carry, (xe[i : i + b], te[i : i + b]))
                total += value * len(xe[i : i + b])  # a device scalar: the sum stays lazy, as torch's
            return carry, total
        xs = xe[: full * b].reshape(full, b, -1)
        ts = te[: full * b].reshape(full, b, -1)
        carry, values = epoch_scan(carry, xs, ts)
        total = values.sum() * b
        if full * b < n:  # the short last batch
            carry, value = step(carry, (xe[full * b :], te[full * b :]))
            total = total + value * (n - full * b)
        return carry, total

    return run_epoch, init, jax.jit(forward)


def train(
    mode: str,
    case: dict,
    state_dict: dict[str, torch.Tensor],
    data: tuple[torch.Tensor, ...],
    epochs: int,
    permutations,
) -> dict:
    """Train with ``mode`` "jit" or "scan"; returns seconds, warmup_seconds, test accuracy, final loss.

    ``case``: activations, loss ("mse" or "bce_logits"), optimizer ("sgd" or "adam"), lr, batch_size,
    threshold. ``permutations()``: a fresh iterator over the epochs' shuffled ``(x, targets)`` (torch
    tensors, minidl's DataLoader order).
    """
    x, y, x_test, y_test = data
    run_epoch, init, predict = make_epoch(mode, case, len(x))
    x_np = x.numpy()

    def accuracy(params, inputs: np.ndarray, labels: np.ndarray) -> float:
        output = np.asarray(predict(params, inputs))
        return float(((output[:, 0] > case["threshold"]).astype(np.int64) == labels).mean())

    params = params_from_state_dict(state_dict)
    # one epoch on a throwaway copy compiles every executable the timed run uses (the same shapes)
    start = time.perf_counter()
    epochs_iter = permutations()
    xe, te = (t.numpy() for t in next(epochs_iter))
    warm, total = run_epoch((jax.tree.map(jnp.copy, params), init(params)), xe, te)
    jax.block_until_ready((warm, total))
    accuracy(warm[0], x_np, y.numpy())
    warmup_seconds = time.perf_counter() - start  # compilation + one epoch

    carry = (params, init(params))
    epochs_iter = permutations()
    start = time.perf_counter()
    for _ in range(epochs):
        xe, te = (t.numpy() for t in next(epochs_iter))
        carry, total = run_epoch(carry, xe, te)
        accuracy(carry[0], x_np, y.numpy())  # the Trainer's per-epoch train accuracy; syncs the epoch
    jax.block_until_ready(carry)
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "warmup_seconds": warmup_seconds,
        "epoch_ms": seconds / epochs * 1e3,
        "test_accuracy": accuracy(carry[0], x_test.numpy(), y_test.numpy()),
        "final_loss": float(total) / len(x),
        "jax": jax.__version__,
    }
