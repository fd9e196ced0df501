"""minidl: a deep-learning framework with hand-written forward and backward passes on torch tensors."""

from minidl import data, nn, optim, train
from minidl.errors import MinidlError
from minidl.gradcheck import GradientCheckError, gradcheck
from minidl.nn.grad_mode import is_grad_enabled, no_grad

__version__ = "0.1.0"

__all__ = [
    "GradientCheckError",
    "MinidlError",
    "__version__",
    "data",
    "gradcheck",
    "is_grad_enabled",
    "nn",
    "no_grad",
    "optim",
    "train",
]
