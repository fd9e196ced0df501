"""minidl.nn: parameters, modules, layers, losses and initialisation."""

from minidl.nn import init
from minidl.nn.activation import ReLU, Sigmoid, Tanh
from minidl.nn.container import Sequential
from minidl.nn.linear import Linear
from minidl.nn.loss import L1Loss, Loss, MAELoss, MSELoss
from minidl.nn.mlp import ACTIVATIONS, mlp, parse_hidden
from minidl.nn.module import Module
from minidl.nn.parameter import Parameter

# CLI/config name -> loss class; a new loss becomes usable by name by adding a row here
LOSSES = {"mse": MSELoss, "mae": L1Loss}

__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "L1Loss",
    "Linear",
    "Loss",
    "MAELoss",
    "MSELoss",
    "Module",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "init",
    "mlp",
    "parse_hidden",
]
