"""Online EWC (Schwarz et al. 2018), as the study runs it.

After every task but the last: the empirical Fisher (squared gradients of the log-likelihood of
the true label, one sample at a time, weighted over time steps by ``--ts_weighting_fisher``) over
``--n_fisher`` training samples (-1: all), averaged; then F <- F_new + gamma * F_old and the
anchor theta* <- theta.  Penalty: lambda / 2 * sum F (theta - theta*)^2.

The study multiplies the stored Fisher by gamma in place at every use; we apply the intended
online update once per task.  The Fisher is computed batched (``fisher.py``).
"""
from __future__ import annotations

import numpy as np
import torch

from cl_rnn.config import Config
from cl_rnn.methods.base import Method, PopulationRegulariser
from cl_rnn.methods.fisher import empirical_fisher
from cl_rnn.methods.quadratic import add_quadratic_grad, main_net_vector, quadratic_penalty
from cl_rnn.methods.registry import MethodSpec
from cl_rnn.nets.rnn import RecurrentNet


class OnlineEWC(Method):
    name = "ewc"

    def __init__(self, net: RecurrentNet, source: Method, config: Config):
        self.net = net
        self.source = source
        self.theta = main_net_vector(source, net.num_params)
        self.strength = config.ewc_lambda
        self.gamma = config.ewc_gamma
        self.n_fisher = config.n_fisher
        self.tbptt = config.tbptt_fisher
        self.ts_weighting = config.ts_weighting_fisher
        self.num_tasks = config.num_tasks
        self.fisher: torch.Tensor | None = None
        self.anchor: torch.Tensor | None = None

    def penalty(self, task: int) -> torch.Tensor | None:
        if self.fisher is None:
            return None
        return quadratic_penalty(self.theta, self.anchor, self.fisher, self.strength / 2)

    def after_task(self, task: int, data) -> None:
        if task == self.num_tasks - 1:
            return
        fresh = self.estimate_fisher(task, data.x_train, data.y_train)
        self.fisher = fresh if self.fisher is None else fresh + self.gamma * self.fisher
        self.anchor = self.theta.detach().clone()

    def estimate_fisher(self, task: int, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean squared per-sample gradient; ``x`` uint8 (N, T, I), ``y`` local labels."""
        chosen = fisher_samples(self.n_fisher, len(y))
        return empirical_fisher(self.net, self.theta, x[chosen], y[chosen], task, self.source.unit_gains(task),
                                self.ts_weighting, self.tbptt)


def fisher_samples(n_fisher: int, available: int, rng: np.random.RandomState | None = None) -> torch.Tensor:
    """The training clips the Fisher estimate uses: all (``--n_fisher=-1`` or more than there are),
    else a random ``n_fisher`` of them, drawn from ``rng`` (default: numpy's global generator)."""
    if n_fisher == -1 or n_fisher >= available:
        return torch.arange(available)
    return torch.from_numpy((rng or np.random).permutation(available)[:n_fisher])


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
        return add_quadratic_grad(theta, self.anchor, self.fisher, self.half, self.twice, grad)

    def after_task(self, theta, task, last, fisher):
        if last:
            return
        fresh = fisher()
        self.fisher = fresh if self.fisher is None else fresh + self.gamma * self.fisher
        self.anchor = theta.clone()


SPEC = MethodSpec("ewc", flag="use_ewc", role="extra", order=10, excludes=("si",),
                  build=lambda config, net, source: OnlineEWC(net, source, config),
                  batched=lambda pop: PopulationEWC(pop.column("ewc_lambda", 0.5), pop.column("ewc_lambda"),
                                                    pop.config.ewc_gamma),
                  summary="Online EWC: a Fisher-weighted quadratic penalty anchors earlier tasks' weights")
