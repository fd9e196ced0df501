"""minidl.optim: optimizers (and, later, learning-rate schedulers) with torch.optim's semantics."""

from minidl.optim.optimizer import Optimizer
from minidl.optim.sgd import SGD

# name -> class; the CLI and configs pick optimizers from this table
OPTIMIZERS = {"sgd": SGD}

__all__ = ["OPTIMIZERS", "SGD", "Optimizer"]
