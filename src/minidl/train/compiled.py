"""``Trainer(..., compile=True)``: whole epochs of minidl's own training step, captured once and compiled.

On a small network a step is a few dozen tiny tensor operations and their dispatch is the whole cost
(docs/performance.md, issue 15). Here the Trainer's step is captured once as one aten graph
(``compiled_capture``), an epoch's full batches run as one ``torch._higher_order_ops.scan`` of it, and
inductor compiles that loop with ``cpp_wrapper=True`` (the loop in generated C++; a compiled single step
gains nothing). Measured on the seed network: 3× per epoch (81 → 26 ms), after 6 s (inductor's disk
cache) to 16 s (cold) of compilation on a quiet machine; worth it for long runs only (docs/performance.md).
A short last batch runs the graph traced for its shape.

Only whole epochs run compiled, from their first step, when no callback wants per-step events: a
``run(steps=n)`` that ends inside an epoch, a resumed mid-epoch start, per-step callbacks run eagerly
(the same math). A stop requested during a compiled epoch is honoured at its end. After each compiled
epoch the weights, gradients and optimizer state are copied back into the Parameters and the
optimizer's flat buffers, so callbacks, evaluation, checkpoints and ``state_dict`` see ordinary state.

Where the step cannot be captured or compiled, one line goes to stderr and the run goes on eagerly
from the same weights (a compiled epoch writes nothing back before it has finished). The compiled epoch
is cached for the run, keyed by the model's structure, dtypes, device, the batch shapes and the
optimizer's hyperparameters other than ``lr``; inductor's on-disk cache (``TORCHINDUCTOR_CACHE_DIR``,
by default ``~/.cache/minidl/inductor``, ``$XDG_CACHE_HOME`` respected) makes a later run or a resume
start from compiled code. The default is set when the first compiled epoch is tried; if the variable is
set by then (by the user, or by torch because ``torch._dynamo`` was imported earlier in the process), it
stays as it is.

``MINIDL_COMPILE_BACKEND`` chooses how the captured epoch runs: ``inductor`` (default), ``eager`` or
``aot_eager`` (the same scan through torch.compile without code generation: seconds, not tens of
seconds, to build; slower than minidl's eager loop) or ``graph`` (the traced graph called once per
batch, no torch.compile at all). The tests use the cheap ones for the logic.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from minidl.train.compiled_capture import Layout, layout_of, refuse_early, trace_step

BACKENDS = ("inductor", "eager", "aot_eager", "graph")
_CACHE: dict[tuple, Callable] = {}  # key -> compiled epoch, for this process (a second Trainer reuses it)
_CACHE_SIZE = 8


def inductor_cache_dir() -> Path:
    """Where inductor keeps its compiled code across processes (``TORCHINDUCTOR_CACHE_DIR`` if set)."""
    if os.environ.get("TORCHINDUCTOR_CACHE_DIR"):
        return Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "minidl" / "inductor"


class CompiledEpochs:
    """One trainer's compiled epochs: the cache, and whether compiling has failed (then never again)."""

    def __init__(self, backend: str | None = None) -> None:
        self.backend = backend or os.environ.get("MINIDL_COMPILE_BACKEND", "inductor")
        if self.backend not in BACKENDS:
            raise ValueError(f"MINIDL_COMPILE_BACKEND must be one of {BACKENDS}, got {self.backend!r}")
        if self.backend == "inductor":  # before torch._dynamo is imported: importing it sets torch's default
            os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(inductor_cache_dir()))
        self.failed = False
        self.reason = ""  # why not, once failed: "<ExcType>: <message>"
        self.epochs_run = 0  # epochs that ran compiled (tests and benchmarks read it)
        self.keys: set[tuple] = set()  # the different compiled epochs this trainer used

    def run_epoch(self, trainer: Any) -> bool:
        """Train the epoch in progress (at its first step) compiled; False: it did not, run it eagerly."""
        if self.failed:
            return False
        loop = trainer.loop
        batches = list(loop.batches)  # the epoch's batches in the loader's order (views of one gather)
        try:
            layout, epoch = self._epoch_for(trainer, batches)
            lrs = [torch.tensor(float(g["lr"]), dtype=batches[0][0].dtype) for g in trainer.optimizer.param_groups]
            carried, total = epoch(layout.carry(), lrs, batches, loop.loss_sum)
        except Exception as error:  # any failure to capture, compile or run: train eagerly
            message = " ".join(str(error).split())[:160] or "no message"
            self.failed, self.reason = True, f"{type(error).__name__}: {message}"
            line = f"minidl: compile=True: cannot compile the training step ({self.reason}); training eagerly"
            print(line, file=sys.stderr)
            loop.batches = iter(batches)
            return False
        layout.write_back(carried)
        loop.loss_sum.copy_(total)
        loop.step = len(batches)
        self.epochs_run += 1
        return True

    def _epoch_for(self, trainer: Any, batches: list) -> tuple[Layout, Callable]:
        refuse_early(trainer)
        layout = layout_of(trainer.optimizer)  # the graph takes the real buffers' values as inputs: any run of
        key = (self.backend, *_key(trainer, layout, batches))  # this structure may use it
        if key not in _CACHE:
            full = [b for b in batches if len(b[0]) == len(batches[0][0])]
            short = batches[len(full) :]
            step = trace_step(trainer, layout, *full[0])
            short_step = trace_step(trainer, layout, *short[0]) if short else None
            while len(_CACHE) >= _CACHE_SIZE:
                del _CACHE[next(iter(_CACHE))]  # the oldest
            _CACHE[key] = self._build(step, short_step)
        self.keys.add(key)
        return layout, _CACHE[key]

    def _build(self, step: Callable, short_step: Callable | None) -> Callable:
        """``epoch(carry, lrs, batches, total) -> (carry, total)`` over the batches in order."""
        n_carry = len([n for n in step.graph.nodes if n.op == "placeholder"]) - 2  # lrs and x, t follow

        def python_loop(carry, lrs, xs, ts, total):
            for x, t in zip(xs, ts, strict=True):
                *carry, loss = _flat(step(*carry, *lrs, x, t))
                total = total + loss * len(x)
            return carry, total

        run = python_loop if self.backend == "graph" else _compiled_scan(step, self.backend)

        def epoch(carry, lrs, batches, total):
            n_lrs = len(lrs)
            assert len(carry) + n_lrs == n_carry, "the traced graph does not take this carry"
            full = batches if short_step is None else batches[:-1]
            xs = torch.stack([b[0] for b in full])
            ts = torch.stack([b[1] for b in full])
            carry, total = run(carry, lrs, xs, ts, total.clone())
            if short_step is not None:
                x, t = batches[-1]
                *carry, loss = _flat(short_step(*carry, *lrs, x, t))
                total = total + loss * len(x)
            return list(carry), total

        return epoch


def _flat(outputs: Any) -> list[torch.Tensor]:
    """The graph's nested outputs ``(data, grads, state, loss)`` as one list, the loss last."""
    data, grads, state, loss = outputs
    return [*data, *grads, *state, loss]


def _compiled_scan(step: Callable, backend: str) -> Callable:
    """The epoch's full batches as one ``scan`` of the traced step, through ``torch.compile``."""
    from torch._higher_order_ops.scan import scan

    def epoch(carry: tuple, lrs: tuple, xs: torch.Tensor, ts: torch.Tensor, total: torch.Tensor):
        def combine(state, batch):
            *carried, running = state
            *new, loss = _flat(step(*carried, *lrs, *batch))
            return (*new, running + loss * batch[0].shape[0]), loss

        final, _ = scan(combine, (*carry, total), (xs, ts))
        return final

    # cpp.threads 1: no OpenMP region per tiny kernel (measured: 6 s an epoch with the default threads on a
    # loaded 2-core machine, against 0.03 s); matrix products still go to aten, with torch's own threads
    options = {"cpp_wrapper": True, "cpp.threads": 1} if backend == "inductor" else None
    compiled = torch.compile(epoch, backend=backend, dynamic=False, fullgraph=True, options=options)

    def run(carry, lrs, xs, ts, total):
        *carry, total = compiled(tuple(carry), tuple(lrs), xs, ts, total)
        return carry, total

    return run


def _key(trainer: Any, layout: Layout, batches: list) -> tuple:
    """What a compiled epoch is specialised to; a change of any of it captures and compiles again."""
    model, optimizer = trainer.model, trainer.optimizer
    params = tuple((name, tuple(p.shape), p.dtype, p.device, p.requires_grad) for name, p in model.named_parameters())
    groups = tuple(
        tuple(sorted((k, repr(v)) for k, v in g.items() if k not in ("lr", "params", "initial_lr")))
        for g in optimizer.param_groups
    )
    shapes = tuple(sorted({(tuple(x.shape), x.dtype, tuple(t.shape), t.dtype) for x, t in batches}, key=repr))
    return (
        _structure(model),
        _structure(trainer.loss_fn),
        type(optimizer).__name__,
        groups,
        params,
        tuple(len(f.params) for f in layout.flats),
        len(batches),
        shapes,
    )


_PLAIN = (bool, int, float, str, tuple, type(None))


def _structure(root: Any) -> tuple:
    """Every module's class, plain attributes (sizes, modes, options) and buffers' values: what a trace bakes in."""
    return tuple(
        (
            f"{type(m).__module__}.{type(m).__qualname__}",
            m.training,
            tuple(sorted((k, repr(v)) for k, v in vars(m).items() if isinstance(v, _PLAIN) and _public(k))),
            tuple((name, b.dtype, tuple(b.shape), tuple(b.flatten().tolist())) for name, b in m.named_buffers()),
        )
        for m in root.modules()
    )


def _public(name: str) -> bool:
    return not name.startswith("_") and name != "training"  # the mode is in the key on its own
