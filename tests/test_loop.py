"""The loop driven by fake callbacks: the order of events, the stop flag, step events at each callback's own
rate, a callback's state through a checkpoint, and ``run`` in pieces equal to one ``fit``, bit for bit."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import minidl.nn as mnn
from minidl.errors import ConfigError
from minidl.optim import SGD, StepLR
from minidl.persist.checkpoint import load_checkpoint
from minidl.train import Callback, Checkpointer, EpochResult, LRSchedule, Trainer, restore_state

N, BATCH = 24, 4  # 6 steps per epoch


def problem() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(N, 3, generator=gen, dtype=torch.float64)
    return x, (x.sum(1) > 1.5).long()


def make_trainer(callbacks=(), seed: int = 0, dropout: bool = True) -> Trainer:
    torch.manual_seed(seed)
    layers = [mnn.Linear(3, 8), mnn.Tanh(), *([mnn.Dropout(0.2)] if dropout else []), mnn.Linear(8, 1)]
    model = mnn.Sequential(*layers).double()
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
    return Trainer(model, mnn.MSELoss(), optimizer, scheduler=StepLR(optimizer, 1, 0.7), callbacks=list(callbacks))


class Recorder(Callback):
    """Writes down every event it hears."""

    def __init__(self, step_every: int = 0) -> None:
        self.step_every = step_every
        self.events: list[tuple[Any, ...]] = []

    def on_fit_begin(self, trainer: Trainer) -> None:
        self.events.append(("fit_begin",))

    def on_epoch_begin(self, epoch: int, steps: int) -> None:
        self.events.append(("epoch_begin", epoch, steps))

    def on_steps(self, steps: int) -> None:
        self.events.append(("steps", steps))

    def on_epoch_trained(self, epoch: int, loss: float) -> None:
        self.events.append(("epoch_trained", epoch))

    def on_epoch_end(self, result: EpochResult) -> None:
        self.events.append(("epoch_end", result.epoch))

    def on_fit_end(self, trainer: Trainer) -> None:
        self.events.append(("fit_end",))


def fit(trainer: Trainer, epochs: int = 2, **kwargs: Any) -> list[EpochResult]:
    x, y = problem()
    with torch.no_grad():
        return trainer.fit(x, y, epochs=epochs, batch_size=BATCH, seed=5, **kwargs)


def test_events_come_in_order():
    recorder = Recorder(step_every=3)
    fit(make_trainer([recorder]))
    epoch = [("steps", 3), ("steps", 3)]
    assert recorder.events == [
        ("fit_begin",),
        *[("epoch_begin", 1, 6), *epoch, ("epoch_trained", 1), ("epoch_end", 1)],
        *[("epoch_begin", 2, 6), *epoch, ("epoch_trained", 2), ("epoch_end", 2)],
        ("fit_end",),
    ]


def test_plain_functions_hear_every_epoch_end():
    seen: list[int] = []
    fit(make_trainer([lambda r: seen.append(r.epoch)]), epochs=3)
    assert seen == [1, 2, 3]


@pytest.mark.parametrize(("rates", "expected"), [
    ((2, 5), {2: [2, 2, 2], 5: [5, 1]}),  # issue 10 item 12: 5 stays 5 next to 2
    ((5, 2), {5: [5, 1], 2: [2, 2, 2]}),
    ((4, 4), {4: [4, 2]}),
    ((1, 6), {1: [1] * 6, 6: [6]}),
    ((7, 3), {7: [6], 3: [3, 3]}),  # a rate longer than the epoch: the remainder at its end
])  # fmt: skip
def test_step_events_come_at_each_callbacks_own_rate(rates, expected):
    recorders = [Recorder(step_every=r) for r in rates]
    fit(make_trainer(recorders), epochs=1)
    for r, recorder in zip(rates, recorders, strict=True):
        assert [e[1] for e in recorder.events if e[0] == "steps"] == expected[r]


def test_callbacks_without_step_events_are_never_called_inside_an_epoch():
    recorder = Recorder(step_every=0)
    fit(make_trainer([recorder, Recorder(step_every=1)]), epochs=1)
    assert not any(e[0] == "steps" for e in recorder.events)


class StopAt(Callback):
    """Sets the stop flag after ``at`` steps of the run."""

    step_every = 1

    def __init__(self, at: int) -> None:
        self.at, self.steps = at, 0

    def on_fit_begin(self, trainer: Trainer) -> None:
        self.trainer = trainer

    def on_steps(self, steps: int) -> None:
        self.steps += steps
        if self.steps == self.at:
            self.trainer.stop_training = True


@pytest.mark.parametrize(("at", "epochs_done", "step"), [(8, 1, 2), (6, 1, 0), (1, 0, 1)])
def test_the_stop_flag_ends_training_at_the_next_step_boundary(at, epochs_done, step):
    recorder = Recorder()
    trainer = make_trainer([StopAt(at), recorder])
    history = fit(trainer, epochs=3)
    loop = trainer.loop
    assert len(history) == epochs_done and loop.global_step == at and loop.step == step
    assert recorder.events[-1] == ("fit_end",) and recorder.events.count(("fit_end",)) == 1
    assert ("epoch_begin", epochs_done + 2, 6) not in recorder.events  # nothing begins after the stop


class Counter(Callback):
    """A callback with state: steps seen, and a tensor it accumulates the epoch losses into."""

    step_every = 2

    def __init__(self) -> None:
        self.steps, self.losses = 0, torch.zeros(2, dtype=torch.float64)

    def on_steps(self, steps: int) -> None:
        self.steps += steps

    def on_epoch_end(self, result: EpochResult) -> None:
        self.losses += torch.tensor([result.loss, result.epoch], dtype=torch.float64)

    def state_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "losses": self.losses.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.steps, self.losses = state["steps"], state["losses"].clone()


def test_a_callbacks_state_goes_through_a_checkpoint(tmp_path):
    whole = Counter()
    trainer = make_trainer([whole])
    fit(trainer, epochs=3)

    first = Counter()
    fit(make_trainer([first, Checkpointer(tmp_path, every=1, keep=None)]), epochs=3)
    checkpoint = load_checkpoint(tmp_path / "checkpoints" / "epoch-0001.safetensors")
    saved = checkpoint.metadata["callbacks"]["Counter"]
    assert saved["steps"] == 6 and saved["losses"][1].item() == 1.0

    again = Counter()
    resumed = make_trainer([again], seed=1)  # other initial weights: the checkpoint's must win
    start = restore_state(resumed, checkpoint)
    fit(resumed, epochs=3, start=start)
    assert again.steps == whole.steps == 18 and torch.equal(again.losses, whole.losses)
    assert all(torch.equal(a, b) for a, b in zip(weights(resumed), weights(trainer), strict=True))


def test_two_callbacks_cannot_share_a_state_key():
    with pytest.raises(ConfigError, match="same state_key: Counter"):
        fit(make_trainer([Counter(), Counter()]))


def weights(trainer: Trainer) -> list[torch.Tensor]:
    return list(trainer.model.state_dict().values())


def same(a: list[EpochResult], b: list[EpochResult]) -> bool:
    drop = lambda rs: [(r.epoch, r.loss, r.accuracy, r.lr, r.val_loss, r.val_accuracy) for r in rs]  # noqa: E731
    return drop(a) == drop(b)


@pytest.mark.parametrize("pieces", [[("steps", 1)] * 18, [("steps", 4), ("steps", 7), ("epochs", 1), ("rest", 0)],
                                    [("epochs", 1), ("steps", 0), ("epochs", 2)], [("steps", 100)]])  # fmt: skip
def test_run_in_pieces_is_one_fit_bit_for_bit(pieces):
    x, y = problem()
    val = (x[:8], y[:8])
    whole, whole_events = make_trainer([Recorder(step_every=4)]), None
    with torch.no_grad():
        whole.fit(x, y, epochs=3, batch_size=BATCH, seed=5, validation_data=val)
    whole_events = whole.callbacks[0].events

    recorder = Recorder(step_every=4)
    pieced = make_trainer([recorder])
    with torch.no_grad():
        pieced.start(x, y, batch_size=BATCH, seed=5, validation_data=val, epochs=3)
        done = 0
        for kind, n in pieces:
            before = pieced.loop.global_step
            ran = pieced.run(steps=n) if kind == "steps" else pieced.run(epochs=n) if kind == "epochs" else pieced.run()
            assert ran == pieced.loop.global_step - before
            done += ran
    assert done == 18 and pieced.loop.finished
    assert all(torch.equal(a, b) for a, b in zip(weights(pieced), weights(whole), strict=True))
    assert same(pieced.history, whole.history) and recorder.events == whole_events


def test_run_reports_where_the_loop_stands():
    x, y = problem()
    trainer = make_trainer()
    loop = trainer.start(x, y, batch_size=BATCH, seed=5, epochs=2)
    with torch.no_grad():
        assert trainer.run(steps=8) == 8
        assert (loop.epoch, loop.step, loop.steps_per_epoch, loop.global_step) == (2, 2, 6, 8)
        assert len(trainer.history) == 1 and trainer.history[0].lr == 0.1
        trainer.optimizer.param_groups[0]["lr"] = 0.05  # between pieces: the caller may change the lr
        assert trainer.run(epochs=1) == 4 and loop.finished
        assert trainer.run() == 0
    assert trainer.history[1].lr == 0.1 * 0.7  # the epoch began before the change (StepLR's gamma 0.7)


def test_run_refuses_bad_arguments():
    x, y = problem()
    trainer = make_trainer()
    with pytest.raises(ConfigError, match="call start"):
        trainer.run(steps=1)
    trainer.start(x, y, batch_size=BATCH)
    for kwargs, message in [({"steps": -1}, "steps must be an integer >= 0"), ({"epochs": True}, "epochs must be"),
                            ({"steps": 1, "epochs": 1}, "not both")]:  # fmt: skip
        with pytest.raises(ConfigError, match=message):
            trainer.run(**kwargs)


class WatchingScheduler:
    """A scheduler whose step takes the metric it watches, as ReduceLROnPlateau's."""

    def __init__(self) -> None:
        self.seen: list[float] = []

    def step(self, metrics: float) -> None:
        self.seen.append(metrics)

    def state_dict(self) -> dict:
        return {}


@pytest.mark.parametrize("validation", [True, False])
def test_a_scheduler_that_watches_a_metric_gets_the_validation_loss_else_the_training_loss(validation):
    x, y = problem()
    trainer = make_trainer()
    trainer.scheduler = scheduler = WatchingScheduler()
    watched = []
    trainer.callbacks = [lambda r: watched.append(trainer.loop.evaluations["val" if validation else "train"].loss)]
    with torch.no_grad():
        history = trainer.fit(x, y, epochs=3, batch_size=BATCH, validation_data=(x[:8], y[:8]) if validation else None)
    assert scheduler.seen == watched and len(watched) == 3
    if validation:
        assert scheduler.seen == [r.val_loss for r in history]
    assert repr(LRSchedule(scheduler)) == "LRSchedule(WatchingScheduler, monitor='auto')"
    assert LRSchedule(StepLR(trainer.optimizer, 1)).monitor is None


def test_the_old_checkpointer_and_interrupt_attributes_refuse_loudly():
    trainer = make_trainer()
    for name in ("checkpointer", "interrupt"):
        with pytest.raises(ConfigError, match="pass Checkpointer"):
            setattr(trainer, name, object())
