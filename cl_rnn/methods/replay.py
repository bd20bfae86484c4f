"""Coreset replay with distillation (``--use_replay --coreset_size N``), as the study runs it.

After every task (the last included): N training samples of that task, the first N of one
shuffled draw, become its coreset.  During task t > 0, every iteration also draws a replay batch:
``--batch_size`` samples split evenly over the t earlier tasks (the remainder goes to the first
tasks of a random order), drawn with replacement from their coresets.  Soft targets are the logits
of the network frozen at the start of task t, on each sample's own head (computed once per task
for the whole coresets).  Loss on the last step, temperature T = 2::

    replay_distill_reg * sum_{j < t} T^2 * -mean_{samples of j} sum_c softmax(z*/T)_c log softmax(z/T)_c

Summed over earlier tasks, not averaged: that is what the study does and what its published
``--replay_distill_reg`` values were tuned with (so the replay term grows with the task count).
The replay batch is one forward pass (per-sample heads), added to the loss as this method's penalty.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from cl_rnn.batches import time_major
from cl_rnn.methods.base import Method
from cl_rnn.methods.registry import MethodSpec
from cl_rnn.nets.rnn import RecurrentNet
from cl_rnn.config import ConfigError

TEMPERATURE = 2.0


class CoresetReplay(Method):
    name = "replay"

    def __init__(self, net: RecurrentNet, source: Method, coreset_size: int, strength: float, batch_size: int):
        self.net = net
        self.source = source
        self.coreset_size = coreset_size
        self.strength = strength
        self.batch_size = batch_size
        self.coreset_indices: list[np.ndarray] = []   # per task: chosen rows of its training set
        self.coresets: list[torch.Tensor] = []        # per task: (T, N, I) float time-major
        self.x: torch.Tensor | None = None            # earlier tasks' coresets side by side (T, M, I)
        self.sample_task: torch.Tensor | None = None  # (M,) task of each coreset sample
        self.targets: torch.Tensor | None = None      # (M, C) frozen logits z*
        self.soft_targets: torch.Tensor | None = None  # (M, C) softmax(z*/T)
        self.starts = np.zeros(0, dtype=np.int64)
        self.sizes = np.zeros(0, dtype=np.int64)

    def before_task(self, task: int, data) -> None:
        available = len(data.y_train)
        if self.coreset_size > available:
            raise ConfigError(f"--coreset_size: {self.coreset_size} is more than the {available} "
                              f"training samples of task {task}")
        if task == 0:
            return
        self.sizes = np.array([c.shape[1] for c in self.coresets[:task]], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(np.int64)
        self.x = torch.cat(self.coresets[:task], 1)
        self.sample_task = torch.cat([torch.full((c.shape[1],), j, dtype=torch.int64, device=c.device)
                                      for j, c in enumerate(self.coresets[:task])])
        self.targets = torch.cat([self._frozen_logits(j, c) for j, c in enumerate(self.coresets[:task])])
        self.soft_targets = torch.softmax(self.targets / TEMPERATURE, 1)

    @torch.no_grad()
    def _frozen_logits(self, task: int, x: torch.Tensor) -> torch.Tensor:
        """Logits of the network as it is now (the start of the new task) on ``task``'s head."""
        weights = self.source.weights(task).detach()
        return self.net.forward(x, weights, task, unit_gains=self.source.unit_gains(task))[0]

    def draw(self, task: int) -> tuple[np.ndarray, np.ndarray]:
        """One replay batch: (rows of ``self.x``, weight 1 / (samples of its task) per row)."""
        earlier = len(self.sizes)
        order = np.random.permutation(earlier)
        per_task = np.full(earlier, self.batch_size // earlier)
        per_task[order[:self.batch_size % earlier]] += 1
        owner = np.repeat(order, per_task[order])
        rows = self.starts[owner] + np.random.randint(0, self.sizes[owner])
        return rows, 1.0 / per_task[owner]

    def penalty(self, task: int) -> torch.Tensor | None:
        if task == 0 or self.strength == 0:
            return None
        rows, sample_weights = self.draw(task)
        index = torch.from_numpy(rows).to(self.x.device)
        tasks = self.sample_task.index_select(0, index)
        logits = self.net.forward(self.x.index_select(1, index), self.source.weights(task), tasks,
                                  unit_gains=self.source.unit_gains(task))[0]
        cross = -(self.soft_targets.index_select(0, index) * F.log_softmax(logits / TEMPERATURE, 1)).sum(1)
        weights = torch.from_numpy(sample_weights).to(cross)
        return (self.strength * TEMPERATURE ** 2) * torch.dot(cross, weights)

    def after_task(self, task: int, data) -> None:
        chosen = np.random.permutation(len(data.y_train))[:self.coreset_size]
        self.coreset_indices.append(chosen)
        device = self.source.parameters()[0].device
        self.coresets.append(time_major(data.x_train[torch.from_numpy(chosen)], device))


def _coresets(config) -> str | None:
    if config.coreset_size > 0:
        return None
    return "--use_replay: cl-rnn implements coreset replay only; set --coreset_size > 0"


SPEC = MethodSpec("replay", flag="use_replay", role="extra", order=40, excludes=("ewc", "si"), check=_coresets,
                  not_batched="--use_replay is not batched",
                  build=lambda config, net, source: CoresetReplay(
                      net, source, config.coreset_size, config.replay_distill_reg, config.batch_size),
                  summary="coreset replay: a few stored samples of each earlier task, distilled")
