"""minidl.optim: optimizers and learning-rate schedulers with torch.optim's semantics."""

from minidl.optim.adagrad import Adagrad
from minidl.optim.adam import Adam
from minidl.optim.adamw import AdamW
from minidl.optim.annealing import CosineAnnealingLR, LinearLR
from minidl.optim.lr_scheduler import ExponentialLR, LRScheduler, MultiStepLR, StepLR
from minidl.optim.optimizer import Optimizer
from minidl.optim.plateau import ReduceLROnPlateau
from minidl.optim.rmsprop import RMSprop
from minidl.optim.sgd import SGD

# name -> class; the CLI and configs pick optimizers and schedulers from these tables
OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad}
SCHEDULERS = {
    "step": StepLR,
    "multistep": MultiStepLR,
    "exponential": ExponentialLR,
    "cosine": CosineAnnealingLR,
    "linear": LinearLR,
    "plateau": ReduceLROnPlateau,
}

__all__ = [
    "OPTIMIZERS",
    "SCHEDULERS",
    "SGD",
    "Adagrad",
    "Adam",
    "AdamW",
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "LinearLR",
    "MultiStepLR",
    "Optimizer",
    "RMSprop",
    "ReduceLROnPlateau",
    "StepLR",
]
