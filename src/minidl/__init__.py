"""minidl: a deep-learning framework with hand-written forward and backward passes on torch tensors."""

from minidl import data, nn, optim, train
from minidl.errors import MinidlError
from minidl.gradcheck import GradientCheckError, gradcheck

__version__ = "0.1.0"

__all__ = ["GradientCheckError", "MinidlError", "__version__", "data", "gradcheck", "nn", "optim", "train"]
