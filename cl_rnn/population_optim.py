"""Adam and gradient clipping over a population: P flat parameter vectors as the rows of one [P, W] tensor.

Each member keeps its own ``cl_rnn.adam.Adam`` over its row (a view of the buffer), so its
update is bit for bit the one its single run makes (torch's fused Adam kernel, the member's own
learning rate, beta1 and weight decay): per member that is two small calls per step.  Clipping
scales each member's row by its own total norm with ``train``'s exact arithmetic; only the norms
are taken row by row (a reduction over a row and over a whole [P, W] buffer may sum in different
orders), the scaling is one op for the population.
"""
from __future__ import annotations

import torch

from cl_rnn.adam import Adam

BETA2 = 0.999
CLIP_EPS = 1e-6  # as train's clipping: scale by max_norm / (norm + 1e-6) when above
ROW_ALIGNMENT = 64  # bytes: where torch's CPU allocator starts every tensor


def aligned_empty(rows: int, width: int, like: torch.Tensor) -> torch.Tensor:
    """An uninitialised [rows, width] tensor whose every row starts on a 64-byte boundary.

    A single run's weights and gradient are tensors of their own, so they start there.  The
    matmul library picks its kernels (and so its rounding) by the alignment of its operands: a
    member's gradient is bit for bit its single run's only if its row starts where a tensor would.
    Rows are padded to whole 64-byte blocks; the [rows, width] view is what the population uses."""
    per_block = ROW_ALIGNMENT // like.element_size()
    padded = -(-width // per_block) * per_block
    return torch.empty(rows, padded, dtype=like.dtype, device=like.device)[:, :width]


def aligned_rows(values: torch.Tensor) -> torch.Tensor:
    """A copy of the [P, W] ``values`` with 64-byte-aligned rows (see ``aligned_empty``)."""
    return aligned_empty(values.shape[0], values.shape[1], values).copy_(values)


class PopulationAdam:
    """One fresh ``Adam`` per member and task (as ``train``), over the rows of ``theta`` [P, W]."""

    def __init__(self, theta: torch.Tensor, lr: list[float], beta1: list[float], weight_decay: list[float]):
        self.rows = list(theta.unbind(0))
        self.members = [Adam([row], lr=rate, betas=(b1, BETA2), weight_decay=decay)
                        for row, rate, b1, decay in zip(self.rows, lr, beta1, weight_decay)]

    def pairs(self) -> list[tuple[Adam, torch.Tensor]]:
        """Each member's optimizer and the row it steps (what ``Regulariser.before_step`` reads)."""
        return list(zip(self.members, self.rows))

    @torch.no_grad()
    def step(self, grad: torch.Tensor) -> None:
        for row, row_grad, optimizer in zip(self.rows, grad.unbind(0), self.members):
            row.grad = row_grad
            optimizer.step()

    def keep(self, index: list[int], theta: torch.Tensor) -> None:
        """Only the members at ``index`` go on, now the rows of ``theta``; their moments move along."""
        rows = list(theta.unbind(0))
        members = [self.members[k] for k in index]
        for new_row, old_row, optimizer in zip(rows, [self.rows[k] for k in index], members):
            group = optimizer.param_groups[0]
            group["params"] = [new_row]
            if old_row in optimizer.state:
                optimizer.state = {new_row: optimizer.state[old_row]}
        self.rows, self.members = rows, members


@torch.no_grad()
def clip_by_member_norm(grad: torch.Tensor, max_norm: torch.Tensor, clipped: torch.Tensor) -> None:
    """Scale each member's row to at most its ``max_norm`` [P, 1], in place; only rows where ``clipped``."""
    if not bool(clipped.any()):
        return
    norms = torch.stack([torch.linalg.vector_norm(row) for row in grad.unbind(0)]).view(-1, 1)
    scale = torch.clamp((norms + CLIP_EPS).reciprocal() * max_norm, max=1.0)  # train's max_norm / (norm + eps)
    grad.mul_(torch.where(clipped, scale, torch.ones_like(scale)))
