"""Online EWC (Schwarz et al. 2018), as the study runs it.

After every task but the last: the empirical Fisher (squared gradients of the log-likelihood of
the true label, one sample at a time, weighted over time steps by ``--ts_weighting_fisher``) over
``--n_fisher`` training samples (-1: all), averaged; then F <- F_new + gamma * F_old and the
anchor theta* <- theta.  Penalty: lambda / 2 * sum F (theta - theta*)^2.

The study multiplies the stored Fisher by gamma in place at every use; we apply the intended
online update once per task.  The Fisher is computed batched (``fisher.py``).  The regulariser is
written over [P, W] (``methods.base.Regulariser``): a single run is one member.
"""
from __future__ import annotations

import numpy as np
import torch

from cl_rnn.config import Config
from cl_rnn.methods.base import Regulariser
from cl_rnn.methods.fisher import empirical_fisher
from cl_rnn.methods.quadratic import add_quadratic_grad
from cl_rnn.methods.registry import MethodSpec
from cl_rnn.nets.rnn import RecurrentNet


class OnlineEWC(Regulariser):
    """F <- F_new + gamma F (after every task but the last), anchor <- theta; per member.

    ``half``: lambda / 2 per member (the penalty's factor); ``twice``: lambda (its gradient's)."""

    def __init__(self, half: torch.Tensor, twice: torch.Tensor, gamma: float):
        self.half, self.twice, self.gamma = half, twice, gamma
        self.fisher: torch.Tensor | None = None
        self.anchor: torch.Tensor | None = None

    def add_grad(self, theta, grad, task):
        if self.fisher is None:
            return None
        return add_quadratic_grad(theta, self.anchor, self.fisher, self.half, self.twice, grad)

    def after_task(self, theta, task, last, fisher):
        if last:
            return
        fresh = fisher()
        self.fisher = fresh if self.fisher is None else fresh + self.gamma * self.fisher
        self.anchor = theta.clone()


def task_fisher(config: Config, net: RecurrentNet, theta: torch.Tensor, data, task: int,
                gains: list[torch.Tensor | None] | None, rng: np.random.RandomState | None = None) -> torch.Tensor:
    """One member's empirical Fisher on a task's training clips (``--n_fisher`` of them, drawn from ``rng``,
    default numpy's global generator); ``theta`` its flat weights, ``gains`` its masks for the task."""
    chosen = fisher_samples(config.n_fisher, len(data.y_train), rng)
    return empirical_fisher(net, theta, data.x_train[chosen], data.y_train[chosen], task, gains,
                            config.ts_weighting_fisher, config.tbptt_fisher)


def fisher_samples(n_fisher: int, available: int, rng: np.random.RandomState | None = None) -> torch.Tensor:
    """The training clips the Fisher estimate uses: all (``--n_fisher=-1`` or more than there are),
    else a random ``n_fisher`` of them, drawn from ``rng`` (default: numpy's global generator)."""
    if n_fisher == -1 or n_fisher >= available:
        return torch.arange(available)
    return torch.from_numpy((rng or np.random).permutation(available)[:n_fisher])


SPEC = MethodSpec("ewc", flag="use_ewc", role="extra", order=10, excludes=("si",),
                  batched=lambda members: OnlineEWC(members.column("ewc_lambda", 0.5), members.column("ewc_lambda"),
                                                    members.config.ewc_gamma),
                  summary="Online EWC: a Fisher-weighted quadratic penalty anchors earlier tasks' weights")
