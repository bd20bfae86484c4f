"""P members' weights as the rows of one [P, W] tensor, trained without autograd.

The loss gradient comes from ``nets/population_lstm.py`` (the C kernel member by member on the CPU,
batched torch ops on a GPU), the regularisers are each extra's ``Regulariser`` over [P, W], clipping
and Adam are ``population_optim.py``'s.  What it trains: fine-tuning, from scratch, masking, and any
Regulariser extra (EWC, SI, the orthogonal penalty), on one LSTM layer straight to the heads.
"""
from __future__ import annotations

import torch

from cl_rnn.batches import time_major
from cl_rnn.methods import registry
from cl_rnn.methods.base import Members, Method, Regulariser, add_penalty_grads, load_tensor_state, tensor_state
from cl_rnn.methods.ewc import task_fisher
from cl_rnn.nets.masks import make_masks
from cl_rnn.nets.population_lstm import PopulationLSTM
from cl_rnn.nets.rnn import RecurrentNet
from cl_rnn.population_optim import PopulationAdam, aligned_empty, aligned_rows, clip_by_member_norm

DRAW_BLOCK = 256  # iterations of batch indices drawn at a time (per member)


class MemberView(Method):
    """One member's weights (or a from-scratch task's own) and masks, for ``evaluation.accuracy``."""

    def __init__(self, weights: torch.Tensor, gains: list[list[torch.Tensor]] | None):
        self._weights, self._gains = weights, gains

    def weights(self, task: int) -> torch.Tensor:
        return self._weights

    def unit_gains(self, task: int) -> list[torch.Tensor | None] | None:
        return None if self._gains is None else self._gains[task]


class KernelLearner:
    def __init__(self, members: list, net: RecurrentNet, tasks: list, device: torch.device, torch_ops: bool,
                 threads: int = 1):
        """``members``: the population's ``Member``s (each one's flags and random generators); ``threads``:
        the loss gradient's products and recurrence split between that many threads."""
        config = members[0].config
        self.members, self.net, self.tasks, self.device = list(members), net, tasks, device
        self.lstm = PopulationLSTM(net, config.ts_weighting, tasks[0].x_train.shape[1], torch_ops, threads)
        self.masks = [make_masks(c.num_tasks, net.spec.rnn, c.mask_fraction, c.random_seed, device)
                      if c.use_masks else None for c in self._configs()]
        self.optimizer: PopulationAdam | None = None
        self.fresh_start()

    def _configs(self) -> list:
        return [m.config for m in self.members]

    def _members(self) -> Members:
        return Members(self._configs(), self.net, self.theta, self.theta)

    def fresh_start(self) -> None:
        """New weights, drawn as each member's single run draws them, and fresh regularisers."""
        self.theta = aligned_rows(torch.stack([m.fresh_weights(self.net, self.device) for m in self.members]))
        self.regularisers = self._regularisers()

    def _regularisers(self) -> list[Regulariser]:
        """Each extra that a member selects (a member whose strength is off gets a zero column)."""
        members = self._members()
        return [spec.batched(members) for spec in registry.selected(*members.configs) if spec.role == "extra"]

    def current_weights(self, k: int, task: int) -> torch.Tensor:
        return self.theta[k].clone()

    def view(self, k: int) -> Method:
        return MemberView(self.theta[k], self.masks[k])

    def trained(self) -> list[torch.Tensor]:
        return [self.theta]

    def compression_ratio(self) -> float:
        return 1.0

    # --- a task ---------------------------------------------------------------------------------
    def begin(self, task: int) -> None:
        data = self.tasks[task]
        self.x = time_major(data.x_train, self.device, torch.uint8)  # bytes: a quarter of float32's memory
        self.y = data.y_train.to(self.device)
        self.task = task
        for reg in self.regularisers:
            reg.before_task(self.theta, task)
        self.draws = [m.draws(len(self.y)) for m in self.members]
        self.block = None
        configs = self._configs()
        self.optimizer = PopulationAdam(self.theta, [c.lr for c in configs], [c.adam_beta1 for c in configs],
                                        [c.weight_decay for c in configs])
        self.max_norm = self._members().column("clip_grad_norm")
        self.clipped = self.max_norm != -1
        self.grad = aligned_empty(*self.theta.shape, self.theta)

    def gradients(self, it: int, iterations: int) -> torch.Tensor:
        """Every member's loss gradient plus its penalties' into ``grad``; returns the losses [P]."""
        batch = self.members[0].config.batch_size
        if it % DRAW_BLOCK == 0:
            count = min(DRAW_BLOCK, iterations - it) * batch
            self.block = torch.stack([torch.from_numpy(d.take(count)).view(-1, batch) for d in self.draws], 1)
        index = self.block[it % DRAW_BLOCK].to(self.device)  # [P, B]
        xs = [self.net.with_task_identity(self.x.index_select(1, rows).to(torch.float32), self.task) for rows in index]
        gains = [None if masks is None else masks[self.task][0] for masks in self.masks]
        losses = self.lstm.loss_and_grad(self.theta, xs, self.y[index], self.task, gains, self.grad)
        return add_penalty_grads(self.regularisers, self.theta, self.grad, self.task, losses)

    def update(self) -> None:
        """Clip, then each member's Adam step, the regularisers around it."""
        grad, theta = self.grad, self.theta
        clip_by_member_norm(grad, self.max_norm, self.clipped)
        for reg in self.regularisers:
            reg.before_step(theta, grad, self.optimizer.pairs())
        self.optimizer.step(grad)
        for reg in self.regularisers:
            reg.after_step(theta, grad)

    def end(self, task: int, last: bool) -> None:
        self.optimizer = self.x = None
        for reg in self.regularisers:
            reg.after_task(self.theta, task, last, lambda: self._fisher(task))

    def _fisher(self, task: int) -> torch.Tensor:
        data, config = self.tasks[task], self.members[0].config
        return torch.stack([task_fisher(config, self.net, self.theta[k], data, task,
                                        None if masks is None else masks[task], member.numpy_rng)
                            for k, (member, masks) in enumerate(zip(self.members, self.masks))])

    # --- members leaving ------------------------------------------------------------------------
    def keep(self, index: torch.Tensor) -> None:
        """Only the members at ``index`` go on; mid-task their optimiser, clipping and draws move along."""
        positions = index.tolist()
        self.members = [self.members[k] for k in positions]
        self.masks = [self.masks[k] for k in positions]
        self.theta = aligned_rows(self.theta[index])
        for reg in self.regularisers:
            reg.keep(index)
        if self.optimizer is not None:
            self.optimizer.keep(positions, self.theta)
            self.max_norm, self.clipped = self.max_norm[index], self.clipped[index]
            self.grad = aligned_rows(self.grad[index])
            self.draws = [self.draws[k] for k in positions]
            if self.block is not None:
                self.block = self.block[:, index]

    # --- checkpoints ----------------------------------------------------------------------------
    def state(self) -> dict:
        return {"theta": self.theta, "regularisers": [tensor_state(reg) for reg in self.regularisers]}

    def load_state(self, state: dict) -> None:
        self.theta = aligned_rows(state["theta"].to(self.device))
        self.regularisers = self._regularisers()
        for reg, saved in zip(self.regularisers, state["regularisers"]):
            load_tensor_state(reg, saved)
