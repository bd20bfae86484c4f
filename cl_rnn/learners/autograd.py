"""One member trained through the ``Method`` protocol and autograd (P = 1).

What the kernel learner does not compute runs here: chunked hypernetworks, coreset replay,
multitask, plugins' Method extras, and networks other than one LSTM layer straight to the heads.
The member's weights come from its method (``methods/build.py``); the regularisers its flags select
are the same ``Regulariser``s the kernel learner uses, over the method's flat weights viewed as
[1, W] (``methods/regularisers.py``).
"""
from __future__ import annotations

import torch

from cl_rnn.adam import Adam
from cl_rnn.batches import MultitaskStream, TaskStream, time_major
from cl_rnn.evaluation import needs_all_steps, step_weights, task_loss
from cl_rnn.methods.base import Method
from cl_rnn.methods.build import build_method
from cl_rnn.methods.regularisers import Regularisers
from cl_rnn.nets.rnn import RecurrentNet


class AutogradLearner:
    def __init__(self, members: list, net: RecurrentNet, tasks: list, device: torch.device):
        (self.member,) = members
        self.config, self.net, self.tasks, self.device = self.member.config, net, tasks, device
        self.step_weights = step_weights(self.config.ts_weighting, tasks[0].x_train.shape[1])
        self.last_only = not needs_all_steps(self.config.ts_weighting)
        self.fresh_start()

    def fresh_start(self) -> None:
        """A fresh method (drawing from the global generators, as the member's are) and its regularisers."""
        self.method = build_method(self.config, self.net, self.device)
        self.regularisers = Regularisers(self.config, self.net, self.method, self.member.numpy_rng)

    def current_weights(self, k: int, task: int) -> torch.Tensor:
        return self.method.weights(task).detach().clone()

    def view(self, k: int) -> Method:
        return self.method

    def trained(self) -> list[torch.Tensor]:
        """The method's parameters, each viewed with a member axis of one."""
        return [p.detach().view(1, *p.shape) for p in self.method.parameters()]

    def compression_ratio(self) -> float:
        return self.method.compression_ratio(self.net)

    # --- a task ---------------------------------------------------------------------------------
    def begin(self, task: int | None) -> None:
        """Before ``task``'s first iteration (None: multitask, every task at once)."""
        config, rng = self.config, self.member.numpy_rng
        if task is None:
            self.stream = MultitaskStream([d.x_train for d in self.tasks], [d.y_train for d in self.tasks],
                                          config.batch_size, self.device, rng)
        else:
            data = self.tasks[task]
            self.stream = TaskStream(time_major(data.x_train, self.device, torch.uint8), data.y_train.to(self.device),
                                     task, config.batch_size, rng)
            self.method.before_task(task, data)
            self.regularisers.before_task(task)
        self.params = self.method.parameters()
        self.optimizer = Adam(self.params, lr=config.lr, betas=(config.adam_beta1, 0.999),
                              weight_decay=config.weight_decay)

    def gradients(self, it: int, iterations: int) -> torch.Tensor:
        """Forward and backward of one batch; returns the loss plus penalties as a [1] tensor."""
        method, regularisers, batch = self.method, self.regularisers, next(self.stream)
        task = batch.task if isinstance(batch.task, int) else 0  # multitask: task 0's hooks (one network)
        weights = method.weights(task)
        if regularisers:
            weights = regularisers.watch(weights, task)
        logits = self.net.forward(batch.x, weights, batch.task, self.last_only, method.unit_gains(task))
        loss = task_loss(logits, batch.y, self.step_weights)
        penalty = method.penalty(task)
        for p in self.params:
            p.grad = None
        (loss if penalty is None else loss + penalty).backward()
        value = float(loss.detach()) + (0.0 if penalty is None else float(penalty.detach()))
        if regularisers:
            value += regularisers.penalty_value()
        return torch.tensor([value], dtype=torch.float64)

    def update(self) -> None:
        if self.config.clip_grad_norm != -1:
            clip_grad_norm(self.params, self.config.clip_grad_norm)
        self.regularisers.before_step(self.optimizer)
        self.optimizer.step()
        self.regularisers.after_step()

    def end(self, task: int | None, last: bool) -> None:
        self.stream = None  # the task's inputs
        if task is not None:
            self.method.after_task(task, self.tasks[task])
            self.regularisers.after_task(task, self.tasks[task], last)

    def keep(self, index: torch.Tensor) -> None:
        """The member leaves (``index`` empty) only when the run ends: nothing to move."""

    # --- checkpoints ----------------------------------------------------------------------------
    def state(self) -> dict:
        return {"method": self.method.state_dict(), "regularisers": self.regularisers.state_dict()}

    def load_state(self, state: dict) -> None:
        self.method.load_state_dict(state["method"])
        self.regularisers.load_state_dict(state["regularisers"])


@torch.no_grad()
def clip_grad_norm(params: list[torch.Tensor], max_norm: float) -> None:
    """Like ``clip_grad_norm_`` (scale by max_norm / (norm + 1e-6) when above), without a host sync."""
    grads = [p.grad for p in params if p.grad is not None]
    norms = [torch.linalg.vector_norm(g) for g in grads]
    norm = norms[0] if len(norms) == 1 else torch.linalg.vector_norm(torch.stack(norms))
    scale = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
    for g in grads:
        g.mul_(scale)

