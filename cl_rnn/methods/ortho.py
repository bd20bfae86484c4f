"""The study's orthogonal regulariser on the hidden-to-hidden weights (``--orthogonal_hh_reg``).

penalty = lambda * sum over gate blocks W (H x H) of every recurrent layer of ||W W^T - I||_F^2,
on the weights the task actually uses (the source's ``weights(task)``), with the closed-form gradient
4 lambda (W W^T - I) W per block; written over [P, W] (``methods.base.Regulariser``).
"""
from __future__ import annotations

import torch

from cl_rnn.methods.base import Regulariser
from cl_rnn.methods.registry import MethodSpec


def orthogonality_penalty(blocks: list[torch.Tensor]) -> torch.Tensor:
    """sum_W ||W W^T - I||_F^2 over square blocks (plain autograd; the reference for the tests)."""
    return sum(((b @ b.t() - torch.eye(b.shape[0], dtype=b.dtype, device=b.device)) ** 2).sum() for b in blocks)


class OrthogonalPenalty(Regulariser):
    """lambda * sum over the gate blocks W of ||W W^T - I||_F^2 per member; members with lambda <= 0 get none.

    ``spans``: ``RecurrentNet.hh_spans()``."""

    def __init__(self, strength: torch.Tensor, four_times: torch.Tensor, spans: list[tuple[int, int, int]]):
        self.strength, self.four_times = strength.clamp(min=0), four_times.clamp(min=0)
        self.spans = spans

    def add_grad(self, theta, grad, task):
        members = theta.shape[0]
        total = None
        for start, end, hidden in self.spans:
            blocks = theta[:, start:end].reshape(-1, hidden, hidden)
            gram = torch.bmm(blocks, blocks.transpose(1, 2))
            gram.diagonal(dim1=1, dim2=2).sub_(1.0)
            squares = gram.pow(2).view(members, -1).sum(1)
            total = squares if total is None else total + squares
            grad[:, start:end].add_(torch.bmm(gram, blocks).view(members, -1).mul_(self.four_times))
        return self.strength.view(-1) * total


SPEC = MethodSpec("ortho_reg", flag="orthogonal_hh_reg", role="extra", order=30,
                  batched=lambda members: OrthogonalPenalty(members.column("orthogonal_hh_reg"),
                                                            members.column("orthogonal_hh_reg", 4.0),
                                                            members.net.hh_spans()),
                  summary="the orthogonality penalty on the hidden-to-hidden gate blocks")
