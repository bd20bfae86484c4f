"""The study's orthogonal regulariser on the hidden-to-hidden weights (``--orthogonal_hh_reg``).

penalty = lambda * sum over gate blocks W (H x H) of every recurrent layer of ||W W^T - I||_F^2,
on the weights the task actually uses (the source's ``weights(task)``).  One autograd node with
the closed-form gradient 4 lambda (W W^T - I) W per block: it runs every iteration.
"""
from __future__ import annotations

import torch

from cl_rnn.methods.base import Method, PopulationRegulariser
from cl_rnn.methods.registry import MethodSpec
from cl_rnn.nets.rnn import RecurrentNet


def orthogonality_penalty(blocks: list[torch.Tensor]) -> torch.Tensor:
    """sum_W ||W W^T - I||_F^2 over square blocks (plain autograd; the reference for the tests)."""
    return sum(((b @ b.t() - torch.eye(b.shape[0], dtype=b.dtype, device=b.device)) ** 2).sum() for b in blocks)


class _OrthoPenalty(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weights, spans, strength):
        total = weights.new_zeros(())
        saved = []
        for start, end, hidden in spans:
            blocks = weights.detach()[start:end].view(-1, hidden, hidden)
            gram = torch.bmm(blocks, blocks.transpose(1, 2))
            gram.diagonal(dim1=1, dim2=2).sub_(1)
            total += gram.pow(2).sum()
            saved.append(gram)
        ctx.spans, ctx.strength, ctx.grams = spans, strength, saved
        ctx.save_for_backward(weights)
        return total * strength

    @staticmethod
    def backward(ctx, grad_output):
        (weights,) = ctx.saved_tensors
        grad = torch.zeros_like(weights)
        for (start, end, hidden), gram in zip(ctx.spans, ctx.grams):
            blocks = weights.detach()[start:end].view(-1, hidden, hidden)
            torch.bmm(gram, blocks, out=grad[start:end].view(-1, hidden, hidden))
        return grad.mul_(4 * ctx.strength * grad_output), None, None


class OrthogonalPenalty(Method):
    name = "ortho_reg"

    def __init__(self, net: RecurrentNet, source: Method, strength: float):
        self.net = net
        self.source = source
        self.strength = strength
        self.spans = [(*net.offsets(f"rnn{k}.w_hh"), hidden) for k, hidden in enumerate(net.spec.rnn)]

    def penalty(self, task: int) -> torch.Tensor:
        return _OrthoPenalty.apply(self.source.weights(task), self.spans, self.strength)


class PopulationOrthogonal(PopulationRegulariser):
    """lambda * sum over the gate blocks W of ||W W^T - I||_F^2; members with lambda <= 0 get none."""

    def __init__(self, strength: torch.Tensor, four_times: torch.Tensor, w_hh: tuple[int, int], hidden: int):
        self.strength, self.four_times = strength.clamp(min=0), four_times.clamp(min=0)
        self.w_hh, self.hidden = w_hh, hidden

    def add_grad(self, theta, grad, task):
        start, end = self.w_hh
        members, h = theta.shape[0], self.hidden
        blocks = theta[:, start:end].reshape(members * 4, h, h)
        gram = torch.bmm(blocks, blocks.transpose(1, 2))
        gram.diagonal(dim1=1, dim2=2).sub_(1.0)
        values = self.strength.view(-1) * gram.pow(2).view(members, -1).sum(1)
        block_grad = torch.bmm(gram, blocks).view(members, -1).mul_(self.four_times)  # as ortho.py's backward
        grad[:, start:end].add_(block_grad)
        return values


SPEC = MethodSpec("ortho_reg", flag="orthogonal_hh_reg", role="extra", order=30,
                  build=lambda config, net, source: OrthogonalPenalty(net, source, config.orthogonal_hh_reg),
                  batched=lambda pop: PopulationOrthogonal(pop.column("orthogonal_hh_reg"),
                                                           pop.column("orthogonal_hh_reg", 4.0),
                                                           pop.net.offsets("rnn0.w_hh"), pop.net.spec.rnn[0]),
                  summary="the orthogonality penalty on the hidden-to-hidden gate blocks")
