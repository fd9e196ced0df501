"""Figure 2: loss and accuracy per epoch, training against validation (and the learning rate if it moved).

The loss axis is logarithmic for regression (its loss falls by orders of magnitude) and wherever the
loss spans more than a factor 30.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from minidl.plot.style import class_color, new_figure, png_bytes
from minidl.train.trainer import EpochResult

TRAIN, VAL = class_color(0), class_color(1)


def training_png(history: Sequence[EpochResult], *, title: str) -> bytes:
    return png_bytes(training_figure(history, title=title))


def training_figure(history: Sequence[EpochResult], *, title: str) -> Any:
    """One panel for the loss, one for the accuracy (classification), one for the lr if a scheduler moved it."""
    epochs = [r.epoch for r in history]
    has_val = any(r.val_loss is not None for r in history)
    has_acc = any(r.accuracy is not None for r in history)
    lr_moves = len({r.lr for r in history}) > 1
    panels = 1 + has_acc + lr_moves
    figure = new_figure(4.6 * panels + 0.6, 4.2)
    axes = list(figure.subplots(1, panels)) if panels > 1 else [figure.subplots()]
    figure.suptitle(title)

    ax = axes.pop(0)
    ax.plot(epochs, [r.loss for r in history], color=TRAIN, marker=".", label="training (mean over the epoch)")
    if has_val:
        ax.plot(epochs, [r.val_loss for r in history], color=VAL, marker=".", label="validation (end of epoch)")
    losses = [v for r in history for v in (r.loss, r.val_loss) if v is not None and v > 0]
    if losses and (not has_acc or max(losses) / min(losses) > 30):
        ax.set_yscale("log")
    ax.set_title("loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)

    if has_acc:
        ax = axes.pop(0)
        ax.plot(epochs, [r.accuracy for r in history], color=TRAIN, marker=".", label="training")
        if has_val:
            ax.plot(epochs, [r.val_accuracy for r in history], color=VAL, marker=".", label="validation")
        ax.set_title("accuracy (measured after each epoch)")
        ax.set_xlabel("epoch")
        ax.set_ylabel("accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9, loc="lower right")

    if lr_moves:
        ax = axes.pop(0)
        ax.plot(epochs, [r.lr for r in history], color="black", marker=".", label="learning rate")
        ax.set_title("learning rate (scheduler)")
        ax.set_xlabel("epoch")
        ax.set_ylabel("lr")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    from matplotlib.ticker import MaxNLocator  # matplotlib is imported only when drawing

    for ax in figure.axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    return figure
