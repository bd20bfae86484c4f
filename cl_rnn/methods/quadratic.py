"""The quadratic penalty EWC and SI share: ``strength * sum(importance * (theta - anchor)^2)``.

One autograd node with a closed-form backward (``2 * strength * importance * (theta - anchor)``):
it runs every iteration, so it stays a few vector ops.
"""
from __future__ import annotations

import torch


class _Quadratic(torch.autograd.Function):
    @staticmethod
    def forward(ctx, theta, anchor, importance, strength):
        diff = theta.detach() - anchor
        weighted = diff * importance
        ctx.save_for_backward(weighted)
        ctx.strength = strength
        return torch.dot(weighted, diff).mul_(strength)

    @staticmethod
    def backward(ctx, grad_output):
        (weighted,) = ctx.saved_tensors
        return weighted * (2 * ctx.strength * float(grad_output)), None, None, None


def quadratic_penalty(theta: torch.Tensor, anchor: torch.Tensor, importance: torch.Tensor,
                      strength: float) -> torch.Tensor:
    """``strength * sum(importance * (theta - anchor)^2)`` for flat vectors; gradient to ``theta`` only."""
    return _Quadratic.apply(theta, anchor, importance, strength)


def add_quadratic_grad(theta, anchor, importance, strength, twice, grad) -> torch.Tensor:
    """strength * sum importance (theta - anchor)^2 per member; its gradient, ``weighted * twice`` with
    ``twice`` = float32(2 strength) as in ``_Quadratic``'s backward, is added to ``grad``."""
    diff = theta - anchor
    weighted = diff * importance
    values = strength.view(-1) * torch.einsum("pw,pw->p", weighted, diff)
    grad.add_(weighted * twice)
    return values


def main_net_vector(source, num_params: int) -> torch.Tensor:
    """The source's single trainable flat main-net vector (what EWC and SI regularise)."""
    params = source.parameters()
    if len(params) != 1 or params[0].numel() != num_params:
        raise ValueError(f"{source.name}: EWC and SI need a source whose only parameter is the "
                         f"main net's flat weight vector ({num_params} values)")
    return params[0]
