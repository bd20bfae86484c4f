"""Synaptic Intelligence (Zenke et al. 2017), as the study runs it.

During a task, the path integral omega += -g * delta_theta at every step, where g is the gradient
of the total loss after clipping and delta_theta the optimizer's update.  With
``--si_task_loss_only``, g is the gradient of the task loss alone and delta_theta the update Adam
would make from it (computed from Adam's state without applying it).  After every task but the
last: Omega += max(omega / ((theta - theta_start)^2 + xi), 0), xi = 1e-3; omega <- 0;
theta_prev <- theta.  Penalty: si_lambda * sum Omega (theta - theta_prev)^2.
"""
from __future__ import annotations

import torch

from cl_rnn.adam import Adam
from cl_rnn.methods.base import Method
from cl_rnn.methods.quadratic import main_net_vector, quadratic_penalty

DAMPING = 1e-3


class SynapticIntelligence(Method):
    name = "si"

    def __init__(self, source: Method, strength: float, task_loss_only: bool, num_tasks: int, num_params: int):
        self.source = source
        self.theta = main_net_vector(source, num_params)
        self.strength = strength
        self.wants_task_grads = task_loss_only
        self.num_tasks = num_tasks
        self.omega = torch.zeros_like(self.theta, requires_grad=False)
        self.importance: torch.Tensor | None = None
        self.anchor: torch.Tensor | None = None
        self.start = self.theta.detach().clone()
        self._grad: torch.Tensor | None = None
        self._before: torch.Tensor | None = None

    def penalty(self, task: int) -> torch.Tensor | None:
        if self.importance is None:
            return None
        return quadratic_penalty(self.theta, self.anchor, self.importance, self.strength)

    def before_task(self, task: int, data) -> None:
        self.start = self.theta.detach().clone()
        self.omega.zero_()

    def after_task_loss_backward(self, task: int) -> None:
        self._grad = self.theta.grad.detach().clone()

    def after_backward(self, task: int, optimizer: Adam) -> None:
        if self.wants_task_grads:
            self.omega.addcmul_(self._grad, adam_update(optimizer, self.theta, self._grad), value=-1)
        else:
            self._before = self.theta.detach().clone()

    def after_step(self, task: int) -> None:
        if not self.wants_task_grads:
            theta = self.theta.detach()
            self.omega.addcmul_(self.theta.grad, theta - self._before, value=-1)

    def after_task(self, task: int, data) -> None:
        if task == self.num_tasks - 1:
            return
        theta = self.theta.detach()
        gained = (self.omega / ((theta - self.start).pow(2) + DAMPING)).clamp_(min=0)
        self.importance = gained if self.importance is None else self.importance + gained
        self.anchor = theta.clone()
        self.omega.zero_()


@torch.no_grad()
def adam_update(optimizer: Adam, param: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """The change Adam would apply to ``param`` for ``grad`` now (its state is left untouched)."""
    group = next(g for g in optimizer.param_groups if any(p is param for p in g["params"]))
    beta1, beta2 = group["betas"]
    state = optimizer.state.get(param, {})
    step = float(state["step"]) + 1 if "step" in state else 1.0
    if group["weight_decay"]:
        grad = grad.add(param, alpha=group["weight_decay"])
    m = grad * (1 - beta1)
    v = grad * grad * (1 - beta2)
    if "exp_avg" in state:
        m.add_(state["exp_avg"], alpha=beta1)
        v.add_(state["exp_avg_sq"], alpha=beta2)
    denom = v.div_(1 - beta2 ** step).sqrt_().add_(group["eps"])
    return m.div_(denom).mul_(-group["lr"] / (1 - beta1 ** step))
