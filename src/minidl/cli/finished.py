"""How a run that ended says so: a resumed run with nothing left to train, and early stopping's line."""

from __future__ import annotations

from pathlib import Path

from minidl.train.early_stopping import EarlyStopping
from minidl.train.state import FitStart


def complete(path: Path, start: FitStart, config: dict, say: bool) -> bool:
    """A resumed run with nothing left to train (all its epochs, or stopped early) and its outputs written:
    says so (``say``) and how to train longer. Outputs missing (killed before writing them): not complete."""
    stopped = start.callback_states.get("EarlyStopping", {}).get("stopped_epoch", 0)
    trained = bool(stopped) or (start.step == 0 and start.epochs_done >= config["epochs"])
    if not (trained and (path / "model.safetensors").is_file() and (path / "summary.md").is_file()):
        return False
    if say and stopped:
        print(f"run {path} is complete: early stopping ended it after epoch {stopped}; nothing to train")
    elif say:
        print(
            f"run {path} is complete: {start.epochs_done} of {config['epochs']} epochs trained; to train longer: "
            f"minidl train --resume {path} --epochs N (N > {start.epochs_done})"
        )
    return True


def early_stop_line(stop: EarlyStopping) -> str:
    restored = f", weights of epoch {stop.best_epoch} restored" if stop.restore_best_weights else ""
    return (
        f"early stopping after epoch {stop.stopped_epoch}: {stop.monitor} has not improved for {stop.patience} "
        f"epochs (best {stop.best:.6g} at epoch {stop.best_epoch}){restored}"
    )
