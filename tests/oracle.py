"""Helpers that run the same computation in torch.nn + torch.autograd, the oracle for every test."""

from __future__ import annotations

import torch

import minidl.nn as mnn


def copy_weights(minidl_module: mnn.Module, torch_module: torch.nn.Module) -> None:
    """Give the torch module exactly the minidl module's parameters and buffers."""
    torch_module.load_state_dict(minidl_module.state_dict())


def torch_grads(torch_module: torch.nn.Module, x: torch.Tensor, grad_output: torch.Tensor, seed: int | None = None):
    """Output, d(output·g)/dx and the parameter gradients by name, from torch.autograd.

    With ``seed``, the global RNG is seeded just before the forward (Dropout then draws a known mask).
    """
    x = x.detach().clone().requires_grad_(True)
    torch_module.zero_grad()
    if seed is not None:
        torch.manual_seed(seed)
    out = torch_module(x)
    out.backward(grad_output)
    grads = {name: p.grad.detach().clone() for name, p in torch_module.named_parameters()}
    return out.detach(), x.grad.detach(), grads


def minidl_grads(module: mnn.Module, x: torch.Tensor, grad_output: torch.Tensor, seed: int | None = None):
    """The same three things from minidl's forward and hand-written backward."""
    module.zero_grad()
    if seed is not None:
        torch.manual_seed(seed)
    out = module(x.clone())
    grad_input = module.backward(grad_output)
    grads = {name: p.grad.clone() for name, p in module.named_parameters()}
    return out, grad_input, grads


def torch_loss(torch_loss_fn: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, grad_output: torch.Tensor):
    """Loss value and d(loss·g)/d input from torch.autograd."""
    x = x.detach().clone().requires_grad_(True)
    value = torch_loss_fn(x, target)
    value.backward(grad_output)
    return value.detach(), x.grad.detach()


def minidl_loss(loss_fn: mnn.Loss, x: torch.Tensor, target: torch.Tensor, grad_output: torch.Tensor):
    value = loss_fn(x.clone(), target)
    return value, loss_fn.backward(grad_output)
