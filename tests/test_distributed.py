"""Data parallelism: 2 gloo processes on 127.0.0.1 train exactly as one process does.

The two-process job is this very file run as a module under torchrun (``launch(..., module=...)``); it
saves rank 0's results and the pytest process compares them with a plain single-process ``Trainer``.
Starting processes is tested in test_distributed_launch.py, the command line in test_distributed_cli.py.
"""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import minidl.nn as mnn
import minidl.optim
from minidl.distributed import (
    DistContext,
    all_reduce_gradients,
    all_reduce_sum,
    broadcast_parameters,
    flat_gradients,
    init_from_env,
    shard_bounds,
)
from minidl.distributed.launch import launch
from minidl.distributed.trainer import DistributedTrainer
from minidl.errors import ConfigError
from minidl.train import Callback, Trainer

ROOT = Path(__file__).resolve().parents[1]
N_SAMPLES, EPOCHS = 103, 3
# (setup, global batch size): 103 = 5·20 + 3 splits the last batch 2/1; 103 = 6·17 + 1 leaves rank 1 empty.
# sgd: momentum; adam; sgd-sum: a sum-reduced loss; sgd-step: a StepLR scheduler (Trainer's loop, via the hooks)
CONFIGS = [("sgd", 20), ("sgd", 17), ("adam", 20), ("sgd-sum", 17), ("sgd-step", 20)]


def problem() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(5)
    x = torch.rand(N_SAMPLES, 3, generator=gen, dtype=torch.float64)
    return x, (x.sum(1) > 1.5).long()


def build(setup: str, seed: int) -> tuple[mnn.Module, minidl.optim.Optimizer]:
    torch.manual_seed(seed)
    model = mnn.Sequential(mnn.Linear(3, 16), mnn.Tanh(), mnn.Linear(16, 16), mnn.ReLU(), mnn.Linear(16, 1)).double()
    if setup == "adam":
        return model, minidl.optim.Adam(model.parameters(), lr=0.01)
    return model, minidl.optim.SGD(model.parameters(), lr=0.005 if setup == "sgd-sum" else 0.1, momentum=0.9)


def available(config: tuple[str, int]) -> bool:
    return config[0] != "adam" or hasattr(minidl.optim, "Adam")


def train(trainer_cls: type[Trainer], config: tuple[str, int], seed: int = 0, **kwargs):
    setup, batch_size = config
    model, optimizer = build(setup, seed)
    x, y = problem()
    loss = mnn.MSELoss(reduction="sum" if setup == "sgd-sum" else "mean")
    scheduler = minidl.optim.StepLR(optimizer, step_size=1, gamma=0.5) if setup == "sgd-step" else None
    trainer = trainer_cls(model, loss, optimizer, scheduler=scheduler, **kwargs)
    with torch.no_grad():
        history = trainer.fit(x, y, epochs=EPOCHS, batch_size=batch_size, seed=11)
    return model.state_dict(), [(r.loss, r.accuracy, r.lr) for r in history]


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


# -- the worker: `python -m tests.test_distributed OUT` under torchrun --------------------------------------
def _uneven_gradients(rank: int, world_size: int) -> list[torch.Tensor]:
    """All-reduced flat gradients for a 3-row batch (split 2/1) and a 1-row batch (rank 1 empty)."""
    model, _ = build("sgd", 0)
    loss = mnn.MSELoss()
    x, y = problem()
    t = y.double().unsqueeze(1)
    out = []
    for rows in (3, 1):
        lo, hi = shard_bounds(rows, world_size, rank)
        model.zero_grad()
        if hi > lo:
            loss(model(x[lo:hi]), t[lo:hi])
            model.backward(loss.backward())
        out.append(all_reduce_gradients(model.parameters(), hi - lo, rows).clone())
    return out


def _worker(out: str) -> None:
    import torch.distributed as dist

    with init_from_env("cpu", timeout=60) as ctx:
        results = {}
        for config in filter(available, CONFIGS):
            # rank 1 starts from other weights: broadcast_parameters must overwrite them with rank 0's
            state, history = train(DistributedTrainer, config, seed=ctx.rank, context=ctx)
            flat = torch.cat([v.reshape(-1) for v in state.values()])
            reference = flat.clone()
            dist.broadcast(reference, src=0)
            spread = (flat - reference).abs().max()
            dist.all_reduce(spread, op=dist.ReduceOp.MAX)
            results[config] = {"state": state, "history": history, "rank_spread": spread.item()}
        grads = _uneven_gradients(ctx.rank, ctx.world_size)
        if ctx.is_main:
            torch.save({"results": results, "grads": grads, "world_size": ctx.world_size, "pid": os.getpid()}, out)


# -- the two-process job --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist") / "rank0.pt"
    code = launch(2, [str(out)], module="tests.test_distributed", timeout=120, cwd=ROOT)
    assert code == 0, f"torchrun exited with {code}"
    return torch.load(out, weights_only=False)


@pytest.mark.parametrize("config", CONFIGS, ids=[f"{o}-batch{b}" for o, b in CONFIGS])
def test_two_processes_train_exactly_as_one(two_processes, config):
    if not available(config):
        pytest.skip("minidl.optim has no Adam yet")
    assert two_processes["world_size"] == 2
    got = two_processes["results"][config]
    assert got["rank_spread"] == 0.0  # both ranks hold bit-identical weights
    state, history = train(Trainer, config)
    assert max_diff(got["state"], state) <= 1e-10
    assert max_diff(got["state"], build(config[0], 0)[0].state_dict()) > 1e-3  # it did train
    for (loss2, acc2, lr2), (loss1, acc1, lr1) in zip(got["history"], history, strict=True):
        assert loss2 == pytest.approx(loss1, rel=1e-12) and acc2 == acc1 and lr2 == lr1
    if config[0] == "sgd-step":
        assert [lr for *_, lr in history] == [0.1, 0.05, 0.025]  # the scheduler stepped in both loops


def test_uneven_and_empty_shares_average_to_the_global_batch_gradient(two_processes):
    x, y = problem()
    for rows, flat in zip((3, 1), two_processes["grads"], strict=True):
        assert torch.allclose(flat, oracle_gradient(x[:rows], y[:rows]), rtol=0, atol=1e-14)


def oracle_gradient(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """torch.autograd's gradient of the mean MSE over the whole batch, flattened in parameter order."""
    model, _ = build("sgd", 0)
    ref = torch.nn.Sequential(
        torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 16), torch.nn.ReLU(), torch.nn.Linear(16, 1)
    ).double()
    ref.load_state_dict(model.state_dict())
    torch.nn.functional.mse_loss(ref(x), y.double().unsqueeze(1)).backward()
    return torch.cat([p.grad.reshape(-1) for p in ref.parameters()])


# -- in one process ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("batch", "world", "shares"),
    [(20, 2, [10, 10]), (3, 2, [2, 1]), (1, 2, [1, 0]), (7, 3, [3, 2, 2]), (2, 4, [1, 1, 0, 0]), (5, 1, [5])],
)
def test_shard_bounds_table(batch, world, shares):
    assert [hi - lo for lo, hi in (shard_bounds(batch, world, r) for r in range(world))] == shares


@given(st.integers(0, 300), st.integers(1, 17))
def test_shard_bounds_cover_the_batch_contiguously_and_evenly(batch, world):
    bounds = [shard_bounds(batch, world, r) for r in range(world)]
    assert bounds[0][0] == 0 and bounds[-1][1] == batch
    assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
    sizes = [hi - lo for lo, hi in bounds]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


@given(st.integers(1, 12), st.integers(1, 5))
def test_scaled_shares_sum_to_the_global_mean_gradient(rows, world):
    """Without a process group all_reduce_gradients only scales; summing the ranks by hand is the SUM."""
    x, y = problem()
    model, _ = build("sgd", 0)
    loss, t = mnn.MSELoss(), y.double().unsqueeze(1)
    total = torch.zeros(sum(p.numel() for p in model.parameters()), dtype=torch.float64)
    for rank in range(world):
        lo, hi = shard_bounds(rows, world, rank)
        model.zero_grad()
        if hi > lo:
            loss(model(x[lo:hi]), t[lo:hi])
            model.backward(loss.backward())
        total += all_reduce_gradients(model.parameters(), hi - lo, rows)
    assert torch.allclose(total, oracle_gradient(x[:rows], y[:rows]), rtol=0, atol=1e-14)


def test_flat_gradients_packs_once_and_layers_write_into_it():
    model, _ = build("sgd", 0)
    params = list(model.parameters())
    params[0].grad.fill_(3.0)
    flat = flat_gradients(params)
    assert flat.numel() == sum(p.numel() for p in params) and flat[: params[0].numel()].eq(3.0).all()
    assert flat_gradients(params).data_ptr() == flat.data_ptr()  # already packed: no copy
    model(torch.rand(4, 3, dtype=torch.float64))
    model.backward(torch.ones(4, 1, dtype=torch.float64))  # layers add into the views in place
    assert torch.equal(flat, torch.cat([p.grad.reshape(-1) for p in params]))
    model.to(dtype=torch.float32)  # rebinds grads: the next call packs again, in the new dtype
    assert flat_gradients(params).dtype == torch.float32


def test_flat_gradients_reuses_an_optimizers_packing():
    flat_module = pytest.importorskip("minidl.optim.flat")
    model, _ = build("sgd", 0)
    (group,) = flat_module.flatten_parameters(model.parameters())
    flat = flat_gradients(model.parameters())
    assert flat.data_ptr() == group.grad.data_ptr() and group.is_packed()  # no grad was rebound


def test_flat_gradients_reuses_a_padded_packing_in_any_order():
    model, _ = build("sgd", 0)
    params = list(model.parameters())
    buffer = torch.zeros(sum(p.numel() + 3 for p in params), dtype=torch.float64)
    offset = 0
    for p in reversed(params):  # packed backwards, 3 elements of padding after each
        p.grad = buffer[offset : offset + p.numel()].view(p.shape)
        offset += p.numel() + 3
    flat = flat_gradients(params)
    assert flat.data_ptr() == buffer.data_ptr() and flat.numel() == buffer.numel() - 3
    assert all(p.grad.untyped_storage().data_ptr() == buffer.data_ptr() for p in params)


def test_flat_gradients_never_steals_grads_from_another_buffer():
    model, _ = build("sgd", 0)
    params = list(model.parameters())
    flat_gradients(params)
    with pytest.raises(ConfigError, match="views into a buffer that does not hold all"):
        flat_gradients([*params[:1], mnn.Linear(2, 2).double().weight])


def test_flat_gradients_needs_one_dtype():
    model, _ = build("sgd", 0)
    model[0].to(dtype=torch.float32)
    with pytest.raises(ConfigError, match=r"one dtype and device, got torch\.float32 on cpu, torch\.float64 on cpu"):
        flat_gradients(model.parameters())


def test_all_reduce_gradients_rejects_bad_counts():
    model, _ = build("sgd", 0)
    with pytest.raises(ConfigError, match="local_count=3, global_count=2"):
        all_reduce_gradients(model.parameters(), 3, 2)


def test_single_process_helpers_are_no_ops():
    model, _ = build("sgd", 0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    broadcast_parameters(model)
    assert max_diff(before, model.state_dict()) == 0.0
    t = torch.tensor([1.5, 2.0])
    assert torch.equal(all_reduce_sum(t), t) and all_reduce_sum(t) is not t


@pytest.mark.parametrize("config", [("sgd", 20), ("sgd-sum", 17), ("sgd-step", 20)], ids=lambda c: c[0])
def test_one_process_distributed_trainer_is_bitwise_the_trainer(config):
    (a, ha), (b, hb) = train(DistributedTrainer, config), train(Trainer, config)
    assert max_diff(a, b) == 0.0 and ha == hb


class Steps(Callback):
    step_every = 2

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def on_epoch_begin(self, epoch: int, steps: int) -> None:
        self.seen.append(("begin", steps))

    def on_steps(self, steps: int) -> None:
        self.seen.append(("steps", steps))


def test_distributed_trainer_calls_callback_hooks_as_the_trainer_does():
    seen = []
    for cls in (Trainer, DistributedTrainer):
        steps = Steps()
        train(cls, ("sgd", 20), callbacks=[steps])
        seen.append(steps.seen)
    assert seen[0] == seen[1] and seen[0][:4] == [("begin", 6), ("steps", 2), ("steps", 2), ("steps", 2)]


def test_distributed_trainer_needs_a_reduced_loss():
    model, optimizer = build("sgd", 0)
    with pytest.raises(ConfigError, match="reduction 'mean' or 'sum'"):
        DistributedTrainer(model, mnn.MSELoss(reduction="none"), optimizer)


def test_main_only_runs_on_rank_zero():
    seen = []
    DistContext(rank=0, world_size=2).main_only(seen.append)(1)
    DistContext(rank=1, world_size=2).main_only(seen.append)(2)
    assert seen == [1]


if __name__ == "__main__":
    _worker(sys.argv[1])
