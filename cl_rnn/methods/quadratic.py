"""The quadratic penalty EWC and SI share: ``strength * sum(importance * (theta - anchor)^2)`` per member."""
from __future__ import annotations

import torch


def add_quadratic_grad(theta, anchor, importance, strength, twice, grad) -> torch.Tensor:
    """strength * sum importance (theta - anchor)^2 per member of [P, W] tensors ([P] values); its gradient,
    ``weighted * twice`` with ``twice`` = float32(2 strength), is added to ``grad``."""
    diff = theta - anchor
    weighted = diff * importance
    values = strength.view(-1) * torch.einsum("pw,pw->p", weighted, diff)
    grad.add_(weighted * twice)
    return values
