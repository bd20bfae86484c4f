"""Adam and gradient clipping over a population: P flat parameter vectors as one [P, W] tensor.

Each member has its own learning rate, beta1 and weight decay ([P, 1] columns) and is clipped by
its own total gradient norm, so member p's update is what ``torch.optim.Adam`` (coupled L2 weight
decay, beta2 0.999, eps 1e-8) and ``train``'s clipping would do to its run alone; the work is a
handful of ops over the whole [P, W] buffer, whatever P is.
"""
from __future__ import annotations

import torch

BETA2 = 0.999
EPS = 1e-8
CLIP_EPS = 1e-6  # as train's clipping: scale by max_norm / (norm + 1e-6) when above


def column(values: list[float], like: torch.Tensor) -> torch.Tensor:
    """Per-member values as a [P, 1] column that broadcasts over a [P, W] buffer."""
    return torch.tensor(values, dtype=like.dtype, device=like.device).view(-1, 1)


class PopulationAdam:
    """Adam for ``theta`` [P, W]; a fresh one per task (as ``train``)."""

    def __init__(self, theta: torch.Tensor, lr: torch.Tensor, beta1: torch.Tensor, weight_decay: torch.Tensor):
        self.theta = theta
        self.lr, self.beta1, self.weight_decay = lr, beta1, weight_decay
        self.decays = bool((weight_decay != 0).any())
        self.exp_avg = torch.zeros_like(theta)
        self.exp_avg_sq = torch.zeros_like(theta)
        self.steps = 0
        self._denom, self._delta = torch.empty_like(theta), torch.empty_like(theta)  # reused every step

    def update(self, grad: torch.Tensor, commit: bool) -> torch.Tensor:
        """The change Adam makes for ``grad`` now; ``commit`` also advances its moments."""
        if self.decays:
            grad = grad.addcmul(self.theta, self.weight_decay)
        steps = self.steps + 1
        exp_avg = self.exp_avg if commit else self.exp_avg.clone()
        exp_avg_sq = self.exp_avg_sq if commit else self.exp_avg_sq.clone()
        exp_avg.lerp_(grad, 1 - self.beta1)
        exp_avg_sq.mul_(BETA2).addcmul_(grad, grad, value=1 - BETA2)
        if commit:
            self.steps = steps
        # the scalars in double, the vector arithmetic in the order of torch's fused Adam
        step_size = (self.lr.double() / (1 - self.beta1.double() ** steps)).to(exp_avg.dtype)
        denom = torch.sqrt(exp_avg_sq, out=self._denom).div_((1 - BETA2 ** steps) ** 0.5).add_(EPS)
        return torch.mul(exp_avg, -step_size, out=self._delta).div_(denom)

    @torch.no_grad()
    def step(self, grad: torch.Tensor) -> None:
        self.theta.add_(self.update(grad, commit=True))

    def keep(self, index: torch.Tensor) -> None:
        """Only the members at ``index`` go on (the others stopped); ``theta`` is replaced by the caller."""
        self.lr, self.beta1, self.weight_decay = self.lr[index], self.beta1[index], self.weight_decay[index]
        self.exp_avg, self.exp_avg_sq = self.exp_avg[index], self.exp_avg_sq[index]
        self._denom, self._delta = self._denom[index], self._delta[index]


@torch.no_grad()
def clip_by_member_norm(grad: torch.Tensor, max_norm: torch.Tensor) -> None:
    """Scale each member's gradient row to at most its ``max_norm`` (inf: not clipped), in place."""
    norm = torch.linalg.vector_norm(grad, dim=1, keepdim=True)
    grad.mul_(torch.clamp(max_norm / (norm + CLIP_EPS), max=1.0))
