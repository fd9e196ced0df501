"""minidl.nn: parameters, modules, layers, losses and initialisation."""

from minidl.nn import init
from minidl.nn.activation import ELU, LeakyReLU, ReLU, Sigmoid, Tanh
from minidl.nn.activation_smooth import GELU, SiLU, Softplus
from minidl.nn.batchnorm import BatchNorm1d
from minidl.nn.bce import BCELoss, BCEWithLogitsLoss
from minidl.nn.container import Sequential
from minidl.nn.cross_entropy import CrossEntropyLoss
from minidl.nn.dropout import Dropout
from minidl.nn.flatten import Flatten, Identity
from minidl.nn.grad_mode import is_grad_enabled, no_grad
from minidl.nn.huber import HuberLoss, SmoothL1Loss
from minidl.nn.linear import Linear
from minidl.nn.loss import L1Loss, Loss, MAELoss, MSELoss
from minidl.nn.mlp import ACTIVATIONS, mlp, parse_hidden
from minidl.nn.module import Module
from minidl.nn.module_list import ModuleDict, ModuleList, ParameterList
from minidl.nn.parameter import Parameter
from minidl.nn.softmax import LogSoftmax, Softmax

# CLI/config name -> loss class; a new loss becomes usable by name by adding a row here
LOSSES = {
    "mse": MSELoss,
    "mae": L1Loss,
    "bce": BCELoss,
    "bce-logits": BCEWithLogitsLoss,
    "cross-entropy": CrossEntropyLoss,
    "huber": HuberLoss,
    "smooth-l1": SmoothL1Loss,
}

__all__ = [
    "ACTIVATIONS",
    "ELU",
    "GELU",
    "LOSSES",
    "BCELoss",
    "BCEWithLogitsLoss",
    "BatchNorm1d",
    "CrossEntropyLoss",
    "Dropout",
    "Flatten",
    "HuberLoss",
    "Identity",
    "L1Loss",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "Loss",
    "MAELoss",
    "MSELoss",
    "Module",
    "ModuleDict",
    "ModuleList",
    "Parameter",
    "ParameterList",
    "ReLU",
    "Sequential",
    "SiLU",
    "Sigmoid",
    "SmoothL1Loss",
    "Softmax",
    "Softplus",
    "Tanh",
    "init",
    "is_grad_enabled",
    "mlp",
    "no_grad",
    "parse_hidden",
]
