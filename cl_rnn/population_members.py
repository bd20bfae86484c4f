"""One member of a population: its flags, run folder, accuracy matrix, random streams and outcome.

A member draws exactly what its single run would draw, from its own generators: torch's (weight
initialisation, seeded like ``train``'s ``torch.manual_seed(random_seed)``) and numpy's (epoch
reshuffles of the batch stream and the EWC Fisher's sample choice, seeded like
``np.random.seed(random_seed)``), in the same order.
"""
from __future__ import annotations

import logging
import math
import time
from typing import Callable

import numpy as np
import torch

from cl_rnn.batches import IndexStream
from cl_rnn.config import Config
from cl_rnn.methods import registry
from cl_rnn.methods.base import Method
from cl_rnn.metrics import task_metrics
from cl_rnn.nets.masks import make_masks
from cl_rnn.nets.rnn import RecurrentNet
from cl_rnn.results import Result, RunFolder, run_result
from cl_rnn.rules import criterion_stop
from cl_rnn.train import TrainingDiverged

log = logging.getLogger("cl_rnn.population")
# report(member, task, metrics): member is the position in train_population's configs
MemberReport = Callable[[int, int, dict], None]


class _View(Method):
    """A member's weights (or a from-scratch task's own) and masks, for ``evaluation.accuracy``."""

    def __init__(self, weights: torch.Tensor, gains: list[list[torch.Tensor]] | None):
        self._weights, self._gains = weights, gains

    def weights(self, task: int) -> torch.Tensor:
        return self._weights

    def unit_gains(self, task: int) -> list[torch.Tensor | None] | None:
        return None if self._gains is None else self._gains[task]


class Member:
    def __init__(self, index: int, config: Config, net: RecurrentNet, started: float, data_fingerprint: str,
                 device: torch.device, reuse: bool = False):
        """``reuse``: continue in the member's run folder (a resumed population)."""
        self.index, self.config, self.net, self.started, self.device = index, config, net, started, device
        self.data_fingerprint = data_fingerprint
        self.folder = RunFolder(config, reuse=reuse)
        self.numpy_rng = np.random.RandomState(config.random_seed)
        self.torch_rng = torch.Generator().manual_seed(config.random_seed)
        self.masks = (make_masks(config.num_tasks, net.spec.rnn, config.mask_fraction, config.random_seed, device)
                      if config.use_masks else None)
        self.matrix = np.full((config.num_tasks, config.num_tasks), np.nan)
        self.task_weights: list[torch.Tensor] = []  # from scratch: each task's own network
        self.stop_reason: str | None = None
        self.error: Exception | None = None
        self.earlier_seconds, self.resumed_at = 0.0, []

    # --- checkpoints ----------------------------------------------------------------------------
    def state(self) -> dict:
        return {"matrix": self.matrix, "task_weights": self.task_weights, "stop_reason": self.stop_reason,
                "error": None if self.error is None else str(self.error),
                "numpy_rng": self.numpy_rng.get_state(), "torch_rng": self.torch_rng.get_state(),
                "seconds": self._seconds(), "resumed_at": self.resumed_at}

    def load_state(self, state: dict, resumed_at: int) -> None:
        self.matrix = state["matrix"].copy()
        self.task_weights = list(state["task_weights"])
        self.stop_reason = state["stop_reason"]
        self.error = None if state["error"] is None else TrainingDiverged(state["error"])
        self.numpy_rng.set_state(state["numpy_rng"])
        self.torch_rng.set_state(state["torch_rng"])
        self.earlier_seconds, self.resumed_at = state["seconds"], [*state["resumed_at"], resumed_at]

    def _seconds(self) -> float:
        return self.earlier_seconds + time.perf_counter() - self.started

    def fresh_weights(self) -> torch.Tensor:
        """A fresh flat vector, drawn as the single run's ``net.init_weights`` draws it (on the CPU, then moved)."""
        return self.net.init_weights(orthogonal_hh=self.config.orthogonal_hh_init, generator=self.torch_rng).to(
            self.device)

    def gains(self, task: int) -> torch.Tensor | None:
        return None if self.masks is None else self.masks[task][0]

    def draws(self, size: int) -> IndexStream:
        return IndexStream(size, self.numpy_rng)

    def evaluate_on(self, theta: torch.Tensor, task: int, x: torch.Tensor, y: torch.Tensor,
                    accuracy: Callable[..., float]) -> float:
        """Accuracy (%) of the weights ``theta`` on one task's clips (validation)."""
        return accuracy(self.net, _View(theta, self.masks), task, x, y, self.device)

    def evaluate(self, theta: torch.Tensor, tasks: list, accuracy: Callable[..., float]) -> np.ndarray:
        row = np.empty(self.config.num_tasks)
        for k, data in enumerate(tasks):
            # from scratch: task k's own network, without masks (as train's evaluation of it)
            view = _View(self.task_weights[k], None) if k < len(self.task_weights) else _View(theta, self.masks)
            row[k] = accuracy(self.net, view, k, data.x_test, data.y_test, self.device)
        return row

    # --- after a task ---------------------------------------------------------------------------
    def record(self, t: int, row: np.ndarray) -> dict:
        """Store row t and write the folder; stop the member below its criterion.  Returns the
        metrics to report (``train``'s)."""
        self.matrix[t] = row
        last = t == self.config.num_tasks - 1
        self.folder.write(self.result(finished=last), self.config.random_seed)
        metrics = task_metrics(self.matrix, t, multitask=False, last=last)
        log.info("member %d, task %d: during %.2f%%, mean final %.2f%%", self.index, t, row[t],
                 metrics["final_mean"])
        reason = criterion_stop(self.config, t, row[t])
        if reason is not None:
            self.stop(reason)
        return metrics

    def stop(self, reason: str, error: Exception | None = None) -> None:
        self.stop_reason, self.error = reason, error
        self.folder.write(self.result(finished=False), self.config.random_seed)

    def result(self, finished: bool) -> Result:
        return run_result(self.config, self.matrix, finished=finished, stop_reason=self.stop_reason,
                          out_dir=self.folder.path, seconds=self._seconds(), method=registry.run_name(self.config),
                          resumed_at=self.resumed_at, data_fingerprint=self.data_fingerprint)


class BestModels:
    """``--use_best_models``: each member's best validation score and weights so far in a task."""

    def __init__(self, theta: torch.Tensor):
        self.scores = torch.full((theta.shape[0],), -math.inf, dtype=torch.float64)
        self.weights = theta.clone()

    def offer(self, scores: torch.Tensor, theta: torch.Tensor) -> None:
        better = scores > self.scores  # NaN (no validation set) is never better, as in train
        self.scores = torch.where(better, scores, self.scores)
        better = better.to(theta.device)
        self.weights[better] = theta[better]

    def restore(self, theta: torch.Tensor) -> None:
        seen = (self.scores > -math.inf).to(theta.device)  # a member with a score kept the weights that scored it
        theta[seen] = self.weights[seen]

    def keep(self, index: torch.Tensor) -> None:
        self.scores, self.weights = self.scores[index], self.weights[index]
