"""The autograd learner's regularisers: the kernel learner's ``Regulariser``s with one member (P = 1).

The member's flat main-net weights (the source's trained vector) are viewed as [1, W].  Their loss
gradient reaches the regularisers through ``watch``: an identity autograd node on the weights whose
backward hands the incoming gradient (the task loss's, plus any autograd penalty through the same
weights) to each regulariser in turn, as the kernel learner does with its [P, W] buffer, so the numbers
are the kernel learner's.
"""
from __future__ import annotations

import numpy as np
import torch

from cl_rnn.adam import Adam
from cl_rnn.config import Config
from cl_rnn.methods import registry
from cl_rnn.methods.base import (Composite, Members, Method, Regulariser, add_penalty_grads, load_tensor_state,
                                 tensor_state)
from cl_rnn.methods.ewc import task_fisher
from cl_rnn.nets.rnn import RecurrentNet


class Regularisers:
    """The regularisers ``config`` selects, over the source's weights."""

    def __init__(self, config: Config, net: RecurrentNet, method: Method, rng: np.random.RandomState | None = None):
        """``method``: the run's source, or a ``Composite`` of it and its Method extras; ``rng``: the
        member's numpy generator, which EWC's Fisher draws its clips from (None: numpy's global one)."""
        source = method.source if isinstance(method, Composite) else method
        self.config, self.net, self.source, self.rng = config, net, source, rng
        params = source.parameters()
        # the trained flat vector, when the weights are one (not a hypernetwork's output)
        self.leaf = params[0] if len(params) == 1 and params[0].numel() == net.num_params else None
        self.theta = None if self.leaf is None else self.leaf.detach().view(1, -1)
        members = Members([config], net, self.theta, params[0])
        self.all: list[Regulariser] = [spec.batched(members) for spec in registry.selected(config)
                                       if spec.role == "extra" and spec.batched is not None]
        self.values: torch.Tensor | None = None  # the penalties of the last backward pass

    def __bool__(self) -> bool:
        return bool(self.all)

    def watch(self, weights: torch.Tensor, task: int) -> torch.Tensor:
        """``weights`` as they are, whose gradient gets the regularisers' added in the backward pass."""
        return _Watched.apply(weights, self, task)

    def add_grads(self, weights: torch.Tensor, grad: torch.Tensor, task: int) -> torch.Tensor:
        grad = grad.clone().view(1, -1)
        self.values = add_penalty_grads(self.all, weights.detach().view(1, -1), grad, task, None)
        return grad.view(-1)

    def penalty_value(self) -> float:
        return 0.0 if self.values is None else float(self.values.sum())

    def before_task(self, task: int) -> None:
        for reg in self.all:
            reg.before_task(self.theta, task)

    def before_step(self, optimizer: Adam) -> None:
        if not self.all or self.leaf is None:
            return
        grad = self.leaf.grad.view(1, -1)
        for reg in self.all:
            reg.before_step(self.theta, grad, [(optimizer, self.leaf)])

    def after_step(self) -> None:
        if not self.all or self.leaf is None:
            return
        grad = self.leaf.grad.view(1, -1)
        for reg in self.all:
            reg.after_step(self.theta, grad)

    def after_task(self, task: int, data, last: bool) -> None:
        """After the task's last iteration (EWC's Fisher, SI's importances); ``last``: the run's last task."""
        for reg in self.all:
            reg.after_task(self.theta, task, last, lambda: self._fisher(task, data))

    def _fisher(self, task: int, data) -> torch.Tensor:
        return task_fisher(self.config, self.net, self.theta[0], data, task, self.source.unit_gains(task),
                           self.rng)[None]

    def state_dict(self) -> list[dict]:
        return [tensor_state(reg) for reg in self.all]

    def load_state_dict(self, states: list[dict]) -> None:
        for reg, state in zip(self.all, states):
            load_tensor_state(reg, state)


class _Watched(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weights, regularisers, task):
        ctx.regularisers, ctx.task = regularisers, task
        ctx.save_for_backward(weights)
        return weights.view_as(weights)

    @staticmethod
    def backward(ctx, grad):
        (weights,) = ctx.saved_tensors
        return ctx.regularisers.add_grads(weights, grad, ctx.task), None, None
