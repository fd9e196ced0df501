"""Helpers that run the same computation in torch.nn + torch.autograd, the oracle for every test."""

from __future__ import annotations

import torch

import minidl.nn as mnn


def copy_weights(minidl_module: mnn.Module, torch_module: torch.nn.Module) -> None:
    """Give the torch module exactly the minidl module's parameters and buffers."""
    torch_module.load_state_dict(minidl_module.state_dict())


def torch_grads(torch_module: torch.nn.Module, x: torch.Tensor, grad_output: torch.Tensor):
    """Output, d(output·g)/dx and the parameter gradients by name, from torch.autograd."""
    x = x.detach().clone().requires_grad_(True)
    torch_module.zero_grad()
    out = torch_module(x)
    out.backward(grad_output)
    grads = {name: p.grad.detach().clone() for name, p in torch_module.named_parameters()}
    return out.detach(), x.grad.detach(), grads


def minidl_grads(module: mnn.Module, x: torch.Tensor, grad_output: torch.Tensor):
    module.zero_grad()
    out = module(x.clone())
    grad_input = module.backward(grad_output)
    grads = {name: p.grad.clone() for name, p in module.named_parameters()}
    return out, grad_input, grads
