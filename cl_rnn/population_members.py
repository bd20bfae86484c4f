"""One member of a population: its flags, run folder, accuracy matrix, random streams and outcome.

A member draws exactly what its single run would draw, from its own generators: torch's (weight
initialisation, seeded like ``torch.manual_seed(random_seed)``) and numpy's (epoch reshuffles of the
batch stream and the EWC Fisher's sample choice, seeded like ``np.random.seed(random_seed)``), in
the same order.  A population of one (a single run) uses the global generators themselves, seeded
so: what a method draws outside the member's reach (a hypernetwork's initialisation, replay's
coresets) then comes from the same streams, as in the study's code.
"""
from __future__ import annotations

import logging
import math
import time
from typing import Callable

import numpy as np
import torch

from cl_rnn import checkpoint
from cl_rnn.batches import IndexStream
from cl_rnn.config import Config
from cl_rnn.methods import registry
from cl_rnn.metrics import task_metrics
from cl_rnn.nets.rnn import RecurrentNet
from cl_rnn.prepare import seed_everything
from cl_rnn.results import Result, RunFolder, run_result
from cl_rnn.rules import criterion_stop
from cl_rnn.stops import TrainingDiverged

log = logging.getLogger("cl_rnn.train")
# report(member, task, metrics): member is the position in train_population's configs
MemberReport = Callable[[int, int, dict], None]


class Member:
    def __init__(self, index: int, config: Config, started: float, own_generators: bool, reuse: bool = False):
        """``own_generators``: private generators (else the global ones, seeded here); ``reuse``: continue
        in the member's run folder (a resumed run)."""
        self.index, self.config, self.started = index, config, started
        self.folder = RunFolder(config, reuse=reuse)
        self.own_generators = own_generators
        if own_generators:
            self.numpy_rng = np.random.RandomState(config.random_seed)
            self.torch_rng = torch.Generator().manual_seed(config.random_seed)
        else:
            seed_everything(config.random_seed)
            self.numpy_rng, self.torch_rng = np.random.mtrand._rand, torch.default_generator
        rows = 1 if config.multitask else config.num_tasks
        self.matrix = np.full((rows, config.num_tasks), np.nan)
        self.task_weights: list[torch.Tensor] = []  # from scratch: each task's own network
        self.stop_reason: str | None = None
        self.error: Exception | None = None
        self.earlier_seconds, self.resumed_at = 0.0, []
        self.data_fingerprint, self.compression_ratio = "", 1.0

    # --- checkpoints ----------------------------------------------------------------------------
    def state(self) -> dict:
        rng = ({"numpy": self.numpy_rng.get_state(), "torch": self.torch_rng.get_state()} if self.own_generators
               else checkpoint.rng_states())
        return {"matrix": self.matrix, "task_weights": self.task_weights, "stop_reason": self.stop_reason,
                "error": None if self.error is None else str(self.error), "rng": rng,
                "seconds": self._seconds(), "resumed_at": self.resumed_at}

    def load_state(self, state: dict, resumed_at: int) -> None:
        self.matrix = state["matrix"].copy()
        self.task_weights = list(state["task_weights"])
        self.stop_reason = state["stop_reason"]
        self.error = None if state["error"] is None else TrainingDiverged(state["error"])
        if self.own_generators:
            self.numpy_rng.set_state(state["rng"]["numpy"])
            self.torch_rng.set_state(state["rng"]["torch"])
        else:
            checkpoint.set_rng_states(state["rng"])
        self.earlier_seconds, self.resumed_at = state["seconds"], [*state["resumed_at"], resumed_at]

    def _seconds(self) -> float:
        return self.earlier_seconds + time.perf_counter() - self.started

    def fresh_weights(self, net: RecurrentNet, device: torch.device) -> torch.Tensor:
        """A fresh flat vector, drawn as the single run's ``net.init_weights`` draws it (on the CPU, then moved)."""
        return net.init_weights(orthogonal_hh=self.config.orthogonal_hh_init, generator=self.torch_rng).to(device)

    def draws(self, size: int) -> IndexStream:
        return IndexStream(size, self.numpy_rng)

    # --- after a task ---------------------------------------------------------------------------
    def record(self, t: int, row: np.ndarray, speed: float, alone: bool) -> dict:
        """Store the row of task t (multitask: the only row) and write the folder; stop the member below its
        criterion.  Returns the metrics to report; ``alone``: the only member (a single run's log line)."""
        multitask, last = self.config.multitask, t == self.config.num_tasks - 1
        self.matrix[0 if multitask else t] = row
        self.folder.write(self.result(finished=last), self.config.random_seed)
        metrics = task_metrics(self.matrix, t, multitask, last)
        who = "" if alone else f"member {self.index}, "
        log.info("%stask %d: during %.2f%%, mean during %.2f%%, mean final %.2f%%, %.0f it/s", who, t,
                 metrics["accuracy_row"][t], metrics["during_mean"], metrics["final_mean"], speed)
        reason = None if multitask else criterion_stop(self.config, t, row[t])
        if reason is not None:
            log.info("%sstopped: %s", who, reason)
            self.stop(reason)
        return metrics

    def stop(self, reason: str, error: Exception | None = None) -> None:
        self.stop_reason, self.error = reason, error
        self.folder.write(self.result(finished=False), self.config.random_seed)

    def outcome(self) -> Result | Exception:
        """The member's ``Result`` (written to its folder once more), or the error that ended it."""
        if self.error is not None:
            return self.error
        result = self.result(finished=self.stop_reason is None)
        self.folder.write(result, self.config.random_seed)
        return result

    def result(self, finished: bool) -> Result:
        return run_result(self.config, self.matrix, finished=finished, stop_reason=self.stop_reason,
                          out_dir=self.folder.path, seconds=self._seconds(), method=registry.run_name(self.config),
                          resumed_at=self.resumed_at, data_fingerprint=self.data_fingerprint,
                          compression_ratio=self.compression_ratio)


class BestModels:
    """``--use_best_models``: each member's best validation score and trained tensors so far in a task.

    ``trained``: the learner's trained tensors, each with the member axis first."""

    def __init__(self, trained: list[torch.Tensor]):
        self.scores = torch.full((trained[0].shape[0],), -math.inf, dtype=torch.float64)
        self.saved = [t.clone() for t in trained]

    def offer(self, scores: torch.Tensor, trained: list[torch.Tensor]) -> None:
        better = scores > self.scores  # NaN (no validation set) is never better
        self.scores = torch.where(better, scores, self.scores)
        for saved, now in zip(self.saved, trained):
            mask = better.to(now.device)
            saved[mask] = now[mask]

    @torch.no_grad()
    def restore(self, trained: list[torch.Tensor]) -> None:
        seen = self.scores > -math.inf  # a member with a score kept the tensors that scored it
        for saved, now in zip(self.saved, trained):
            mask = seen.to(now.device)
            now[mask] = saved[mask]

    def keep(self, index: torch.Tensor) -> None:
        self.scores, self.saved = self.scores[index], [saved[index] for saved in self.saved]
