"""The regularisers of ``cl_rnn.methods`` for a population: state as [P, W] tensors, strengths as [P, 1].

Each follows its single-run module (``ewc.py``, ``si.py``, ``ortho.py``) and adds its closed-form
gradient to the population's gradient buffer with the same elementwise arithmetic as the single
run's autograd node (so a member's numbers are its single run's), returning the per-member
penalty values for the divergence check.  ``keep(index)`` drops stopped members.
"""
from __future__ import annotations

from typing import Callable

import torch

from cl_rnn.methods.si import DAMPING, add_adam_path
from cl_rnn.population_optim import PopulationAdam


class PopulationRegulariser:
    #: set True to get the task loss's gradient before the penalties are added (SI, task loss only)
    wants_task_grads = False

    def add_grad(self, theta: torch.Tensor, grad: torch.Tensor, task: int) -> torch.Tensor | None:
        """Add the penalty's gradient to ``grad``; per-member penalty values [P], or None (no penalty)."""
        return None

    def before_task(self, theta: torch.Tensor, task: int) -> None:
        pass

    def after_task_loss(self, grad: torch.Tensor) -> None:
        pass

    def before_step(self, theta: torch.Tensor, grad: torch.Tensor, optimizer: PopulationAdam) -> None:
        pass

    def after_step(self, theta: torch.Tensor, grad: torch.Tensor) -> None:
        pass

    def after_task(self, theta: torch.Tensor, task: int, last: bool, fisher: Callable[[], torch.Tensor]) -> None:
        pass

    def keep(self, index: torch.Tensor) -> None:
        for name, value in vars(self).items():
            if isinstance(value, torch.Tensor) and value.dim() == 2:
                setattr(self, name, value[index])


def _quadratic(theta, anchor, importance, strength, twice, grad) -> torch.Tensor:
    """strength * sum importance (theta - anchor)^2 per member; its gradient, ``weighted * twice`` with
    ``twice`` = float32(2 strength) as in ``quadratic.py``'s backward, is added to ``grad``."""
    diff = theta - anchor
    weighted = diff * importance
    values = strength.view(-1) * torch.einsum("pw,pw->p", weighted, diff)
    grad.add_(weighted * twice)
    return values


class PopulationEWC(PopulationRegulariser):
    """Online EWC: F <- F_new + gamma F (after every task but the last), anchor <- theta.

    ``half``: lambda / 2 per member (the penalty's factor); ``twice``: lambda (its gradient's)."""

    def __init__(self, half: torch.Tensor, twice: torch.Tensor, gamma: float):
        self.half, self.twice, self.gamma = half, twice, gamma
        self.fisher: torch.Tensor | None = None
        self.anchor: torch.Tensor | None = None

    def add_grad(self, theta, grad, task):
        if self.fisher is None:
            return None
        return _quadratic(theta, self.anchor, self.fisher, self.half, self.twice, grad)

    def after_task(self, theta, task, last, fisher):
        if last:
            return
        fresh = fisher()
        self.fisher = fresh if self.fisher is None else fresh + self.gamma * self.fisher
        self.anchor = theta.clone()


class PopulationSI(PopulationRegulariser):
    """Synaptic Intelligence: the path integral omega per member, importances after each task."""

    def __init__(self, strength: torch.Tensor, twice: torch.Tensor, task_loss_only: bool, theta: torch.Tensor):
        self.strength, self.twice = strength, twice
        self.wants_task_grads = task_loss_only
        self.omega = torch.zeros_like(theta)
        self.start = theta.clone()
        self.importance: torch.Tensor | None = None
        self.anchor: torch.Tensor | None = None
        self._task_grad: torch.Tensor | None = None
        self._before: torch.Tensor | None = None

    def add_grad(self, theta, grad, task):
        if self.importance is None:
            return None
        return _quadratic(theta, self.anchor, self.importance, self.strength, self.twice, grad)

    def before_task(self, theta, task):
        self.start = theta.clone()
        self.omega.zero_()

    def after_task_loss(self, grad):
        self._task_grad = grad.clone()

    def before_step(self, theta, grad, optimizer):
        if self.wants_task_grads:  # with the update each member's Adam would make from the task loss alone
            for omega, member, row, task_grad in zip(self.omega.unbind(0), optimizer.members, optimizer.rows,
                                                     self._task_grad.unbind(0)):
                add_adam_path(omega, member, row, task_grad)
        else:
            self._before = theta.clone()

    def after_step(self, theta, grad):
        if not self.wants_task_grads:
            self.omega.addcmul_(grad, theta - self._before, value=-1)

    def after_task(self, theta, task, last, fisher):
        if last:
            return
        gained = (self.omega / ((theta - self.start).pow(2) + DAMPING)).clamp_(min=0)
        self.importance = gained if self.importance is None else self.importance + gained
        self.anchor = theta.clone()
        self.omega.zero_()


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
