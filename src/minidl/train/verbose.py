"""What ``Trainer.fit(..., verbose=)`` prints, Keras' convention: 0 nothing, 1 a progress bar per epoch
(``tqdm.auto``: a widget in a notebook, a text bar in a terminal), 2 one line per epoch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from minidl.errors import ConfigError
from minidl.train.callbacks import Callback, TrainerView

if TYPE_CHECKING:
    from minidl.train.evaluation import EpochResult


def epoch_line(r: EpochResult) -> str:
    """``loss: 0.0243 - accuracy: 0.9780 - val_loss: 0.0300 - val_accuracy: 0.9700``; absent values left out."""
    values = {"loss": r.loss, "accuracy": r.accuracy, "val_loss": r.val_loss, "val_accuracy": r.val_accuracy}
    return " - ".join(f"{name}: {value:.4f}" for name, value in values.items() if value is not None)


class Verbose(Callback):
    """``verbose=1``: a bar over each epoch's steps, its metrics on it when the epoch ends; ``2``: a line."""

    def __init__(self, verbose: int) -> None:
        if verbose not in (1, 2):
            raise ConfigError(f"Trainer.fit: verbose must be 0, 1 or 2, got {verbose!r}")
        self.verbose = verbose
        self.step_every = 1 if verbose == 1 else 0
        self.bar: Any = None
        self.epochs: int | None = None

    def on_fit_begin(self, trainer: TrainerView) -> None:
        self.epochs = trainer.loop.epochs

    def _name(self, epoch: int) -> str:
        return f"Epoch {epoch}/{self.epochs}" if self.epochs is not None else f"Epoch {epoch}"

    def on_epoch_begin(self, epoch: int, steps: int) -> None:
        if self.verbose == 1:
            from tqdm.auto import tqdm

            self.step_every = max(1, steps // 50)  # about 50 updates an epoch
            self.bar = tqdm(total=steps, desc=self._name(epoch), unit="step")

    def on_steps(self, steps: int) -> None:
        if self.bar is not None:
            self.bar.update(steps)

    def on_epoch_end(self, result: EpochResult) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(epoch_line(result), refresh=True)
            self.bar.close()
            self.bar = None
        else:
            print(f"{self._name(result.epoch)} - {result.seconds:.2f}s - {epoch_line(result)}", flush=True)

    def on_fit_end(self, trainer: TrainerView) -> None:
        if self.bar is not None:  # stopped in the middle of an epoch
            self.bar.close()
            self.bar = None
