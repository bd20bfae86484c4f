"""The study's orthogonal regulariser on the hidden-to-hidden weights (``--orthogonal_hh_reg``).

penalty = lambda * sum over gate blocks W (H x H) of every recurrent layer of ||W W^T - I||_F^2,
on the weights the task actually uses (the source's ``weights(task)``).
"""
from __future__ import annotations

import torch

from cl_rnn.methods.base import Method
from cl_rnn.nets.rnn import RecurrentNet


def orthogonality_penalty(blocks: list[torch.Tensor]) -> torch.Tensor:
    """sum_W ||W W^T - I||_F^2 over square blocks (stacked per size: one bmm per size)."""
    total = blocks[0].new_zeros(())
    for size in sorted({b.shape[0] for b in blocks}):
        stack = torch.stack([b for b in blocks if b.shape[0] == size])
        gram = torch.bmm(stack, stack.transpose(1, 2))
        total = total + (gram - torch.eye(size, dtype=gram.dtype, device=gram.device)).pow(2).sum()
    return total


class OrthogonalPenalty(Method):
    name = "ortho_reg"

    def __init__(self, net: RecurrentNet, source: Method, strength: float):
        self.net = net
        self.source = source
        self.strength = strength

    def penalty(self, task: int) -> torch.Tensor:
        return self.strength * orthogonality_penalty(self.net.hh_blocks(self.source.weights(task)))
