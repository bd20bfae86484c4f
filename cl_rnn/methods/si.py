"""Synaptic Intelligence (Zenke et al. 2017), as the study runs it.

During a task, the path integral omega += -g * delta_theta at every step, where g is the gradient
of the total loss after clipping and delta_theta the optimizer's update.  With
``--si_task_loss_only``, g is the gradient of the task loss alone and delta_theta the update Adam
would make from it (computed from Adam's state without applying it).  After every task but the
last: Omega += max(omega / ((theta - theta_start)^2 + xi), 0), xi = 1e-3; omega <- 0;
theta_prev <- theta.  Penalty: si_lambda * sum Omega (theta - theta_prev)^2.  Written over [P, W]
(``methods.base.Regulariser``): a single run is one member.
"""
from __future__ import annotations

import math

import torch

from cl_rnn.adam import Adam
from cl_rnn.methods.base import Regulariser
from cl_rnn.methods.quadratic import add_quadratic_grad
from cl_rnn.methods.registry import MethodSpec

DAMPING = 1e-3


@torch.no_grad()
def adam_update(optimizer: Adam, param: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """The change Adam would apply to ``param`` for ``grad`` now (its state is left untouched)."""
    group = next(g for g in optimizer.param_groups if any(p is param for p in g["params"]))
    beta1, beta2 = group["betas"]
    state = optimizer.state.get(param, {})
    step = float(state["step"]) + 1 if "step" in state else 1.0
    if group["weight_decay"]:
        grad = grad.add(param, alpha=group["weight_decay"])
    if "exp_avg" in state:
        m = torch.lerp(state["exp_avg"], grad, 1 - beta1)
        v = torch.mul(state["exp_avg_sq"], beta2).addcmul_(grad, grad, value=1 - beta2)
    else:
        m = grad * (1 - beta1)
        v = torch.mul(grad, grad).mul_(1 - beta2)
    # torch's sqrt(v / bc2) + eps, rewritten as (sqrt(v) + eps sqrt(bc2)) / sqrt(bc2): fewer vector ops
    bc1, root_bc2 = 1 - beta1 ** step, math.sqrt(1 - beta2 ** step)
    denom = v.sqrt_().add_(group["eps"] * root_bc2)
    return m.div_(denom).mul_(-group["lr"] * root_bc2 / bc1)


@torch.no_grad()
def add_adam_path(omega: torch.Tensor, optimizer: Adam, param: torch.Tensor, grad: torch.Tensor) -> None:
    """``omega -= grad * adam_update(optimizer, param, grad)`` in six vector passes instead of nine.

    With m' = lerp(m, g, 1 - b1) and u = v + g^2 (1 - b2) / b2 (so v' = b2 u), Adam's update is
    -lr / bc1 * m' / (sqrt(b2 u / bc2) + eps) = -c * m' / (sqrt(u) + e), c = lr / bc1 / s,
    e = eps / s, s = sqrt(b2 / bc2).
    """
    group = next(g for g in optimizer.param_groups if any(p is param for p in g["params"]))
    beta1, beta2 = group["betas"]
    state = optimizer.state.get(param)
    if state is None:  # before Adam's first step: its update is the same formula from zero moments
        state = {"step": torch.zeros(()), "exp_avg": torch.zeros_like(param), "exp_avg_sq": torch.zeros_like(param)}
    step = float(state["step"]) + 1
    seen = grad.add(param, alpha=group["weight_decay"]) if group["weight_decay"] else grad  # Adam's coupled L2
    scale = math.sqrt(beta2 / (1 - beta2 ** step))
    m = torch.lerp(state["exp_avg"], seen, 1 - beta1)
    u = torch.addcmul(state["exp_avg_sq"], seen, seen, value=(1 - beta2) / beta2).sqrt_().add_(group["eps"] / scale)
    omega.addcdiv_(m.mul_(grad), u, value=group["lr"] / (1 - beta1 ** step) / scale)


class SynapticIntelligence(Regulariser):
    """The path integral omega per member, importances after every task but the last."""

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
        return add_quadratic_grad(theta, self.anchor, self.importance, self.strength, self.twice, grad)

    def before_task(self, theta, task):
        self.start = theta.clone()
        self.omega.zero_()

    def after_task_loss(self, grad):
        self._task_grad = grad.clone()

    def before_step(self, theta, grad, adams):
        if self.wants_task_grads:  # with the update each member's Adam would make from the task loss alone
            for omega, (adam, param), task_grad in zip(self.omega.unbind(0), adams, self._task_grad.unbind(0)):
                add_adam_path(omega, adam, param, task_grad)
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


SPEC = MethodSpec("si", flag="use_si", role="extra", order=20,
                  batched=lambda members: SynapticIntelligence(members.column("si_lambda"),
                                                               members.column("si_lambda", 2.0),
                                                               members.config.si_task_loss_only, members.theta),
                  summary="Synaptic Intelligence: a quadratic penalty weighted by each weight's path integral")
