"""``train(config)``: one continual-learning experiment, the function every sweep trial calls.

For each task: a fresh Adam over the method's parameters, ``--n_iter`` iterations on an
epoch-reshuffled batch stream, validation every ``--val_iter`` iterations and at the last one
(before that iteration's update), optional best-model restore, the method's bookkeeping, then
the test accuracy on every task becomes a row of the accuracy matrix.  ``--multitask`` trains one
network on all tasks at once; ``--train_from_scratch`` starts each task from a fresh network.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import time
from typing import Callable

import numpy as np
import torch

from cl_rnn import checkpoint, stops
from cl_rnn.adam import Adam
from cl_rnn.batches import MultitaskStream, TaskStream, time_major
from cl_rnn.config import Config
from cl_rnn.data.fingerprint import fingerprint
from cl_rnn.evaluation import accuracy, needs_all_steps, step_weights, task_loss
from cl_rnn.methods import registry
from cl_rnn.methods.base import Batch, Method
from cl_rnn.methods.build import build_method
from cl_rnn.methods.regularisers import Regularisers
from cl_rnn.metrics import task_metrics
from cl_rnn.nets import lstm_kernel
from cl_rnn.nets.rnn import NetSpec, RecurrentNet
from cl_rnn.prepare import choose_device, data_source, run_tasks, seed_everything
from cl_rnn.results import Result, RunFolder, run_result
from cl_rnn.rules import check, criterion_stop

log = logging.getLogger("cl_rnn.train")
LOSS_LOG_EVERY = 50
Report = Callable[[int, dict], None]


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


def divergence(value: float, iteration: int) -> tuple[str, TrainingDiverged]:
    """A diverged run's stop reason and the error its ``train`` raises (population members keep it)."""
    reason = f"loss became {value} at iteration {iteration}"
    return reason, TrainingDiverged(f"training diverged: the {reason} (try a smaller --lr or --clip_grad_norm)")


class CriterionStop(Exception):
    """A task's during accuracy fell below ``--during_acc_criterion``."""


def train(config: Config, report: Report | None = None, tasks: list | None = None) -> Result:
    """Run one experiment; see the module docstring.  ``tasks`` overrides data loading."""
    check(config)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: one thread is fastest, and trials run side by side
    try:
        experiment = _Experiment(config, report)
        with stops.explained(config, experiment.folder, lambda: experiment.last_saved):
            experiment.prepare(tasks)
            return experiment.run()
    finally:
        torch.set_num_threads(threads)


class _Experiment:
    def __init__(self, config: Config, report: Report | None):
        """The run folder; ``prepare`` loads the data and builds (or restores) the method."""
        self.config = config
        self.report = report
        self.started = time.perf_counter()
        self.device = choose_device(config)
        lstm_kernel.preload()  # compiles on a machine's first run: overlap it with loading the data
        self.resumed = checkpoint.resumable(config, self.device)  # an unfinished run of these flags in --out_dir
        self.folder = RunFolder(config, reuse=self.resumed is not None)
        # the task of the folder's checkpoint; None: nothing to continue from, a stop discards the folder
        self.last_saved: int | None = None if self.resumed is None else self.resumed.task

    def prepare(self, tasks: list | None) -> None:
        config, resumed = self.config, self.resumed
        seed_everything(config.random_seed)
        if torch.are_deterministic_algorithms_enabled() != config.deterministic_run:
            torch.use_deterministic_algorithms(config.deterministic_run)  # the first call costs 70 MB of memory
        self.tasks = run_tasks(config, tasks)
        self.data_fingerprint = fingerprint(self.tasks)
        if resumed is not None:
            checkpoint.check_same_data(resumed.data_fingerprint, self.data_fingerprint,
                                       data_source(config, tasks is not None), self.folder.path)
        self.net = RecurrentNet(NetSpec.from_config(config, input_size=self.tasks[0].x_train.shape[2]))
        self.method, self.regularisers = self._fresh_method()
        rows = 1 if config.multitask else config.num_tasks
        self.matrix = np.full((rows, config.num_tasks), np.nan)
        self.step_weights = step_weights(config.ts_weighting, self.tasks[0].x_train.shape[1])
        self.last_only = not needs_all_steps(config.ts_weighting)
        self.stop_reason: str | None = None
        self.task_weights: list[torch.Tensor] = []  # from scratch: each task's own network
        self.first_task, self.earlier_seconds, self.resumed_at = 0, 0.0, []
        if resumed is not None:
            self._resume(resumed)

    def _fresh_method(self) -> tuple[Method, Regularisers]:
        method = build_method(self.config, self.net, self.device)
        return method, Regularisers(self.config, self.net, method)

    # --- checkpoints ---------------------------------------------------------------------------
    def _resume(self, state: checkpoint.RunState) -> None:
        """Continue after the checkpoint's task, exactly where the interrupted run was."""
        self.method.load_state_dict(state.method)
        self.regularisers.load_state_dict(state.regularisers)
        self.task_weights = list(state.task_weights)
        self.matrix = np.asarray(state.matrix, dtype=float).copy()
        self.first_task = state.task + 1
        self.earlier_seconds = state.seconds
        self.resumed_at = [*state.resumed_at, self.first_task]
        self.last_saved = state.task
        checkpoint.set_rng_states(state.rng)
        log.info("resuming %s after task %d", self.folder.path, state.task)

    def _save_checkpoint(self, t: int, done: bool = False) -> None:
        self.folder.record(checkpoint.path_in(self.folder.path))  # the first one's folder: the run's to discard
        checkpoint.save(self.folder.path, checkpoint.RunState(
            config=dataclasses.asdict(self.config), task=t, matrix=self.matrix, method=self.method.state_dict(),
            regularisers=self.regularisers.state_dict(),
            task_weights=self.task_weights, rng=checkpoint.rng_states(), seconds=self._seconds(),
            resumed_at=self.resumed_at, done=done, data_fingerprint=self.data_fingerprint))
        self.last_saved = t

    def _seconds(self) -> float:
        return self.earlier_seconds + time.perf_counter() - self.started

    # --- the run ------------------------------------------------------------------------------
    def run(self) -> Result:
        log.info("method %s, %d main-net weights, device %s, run folder %s",
                 registry.run_name(self.config), self.net.num_params, self.device, self.folder.path)
        try:
            if self.config.multitask:
                self._multitask()
            else:
                for t in range(self.first_task, self.config.num_tasks):
                    self._task(t)
        except CriterionStop as stop:
            self.stop_reason = str(stop)
            log.info("stopped: %s", self.stop_reason)
        result = self._result(finished=self.stop_reason is None)
        self.folder.write(result, self.config.random_seed)
        if self.config.store_final_models:
            self._save_checkpoint(self.config.num_tasks - 1, done=True)
        else:
            checkpoint.remove(self.folder.path)  # the run is over: nothing left to resume
        return result

    def _task(self, t: int) -> None:
        config = self.config
        if config.train_from_scratch and t > 0:
            self.task_weights.append(self.method.weights(t - 1).detach().clone())
            self.method, self.regularisers = self._fresh_method()
        data = self.tasks[t]
        stream = TaskStream(time_major(data.x_train, self.device, torch.uint8), data.y_train.to(self.device), t,
                            config.batch_size)
        self.method.before_task(t, data)
        self.regularisers.before_task(t)
        speed = self._optimise(stream, config.n_iter, lambda: self._validate([t]))
        self.method.after_task(t, data)
        self.regularisers.after_task(t, data)
        self.matrix[t] = self._test_row()
        self._after_row(t, speed)
        reason = criterion_stop(config, t, self.matrix[t, t])
        if reason is not None:
            raise CriterionStop(reason)

    def _multitask(self) -> None:
        config = self.config
        stream = MultitaskStream([d.x_train for d in self.tasks], [d.y_train for d in self.tasks],
                                 config.batch_size, self.device)
        speed = self._optimise(stream, config.n_iter * config.num_tasks,
                               lambda: self._validate(list(range(config.num_tasks))))
        self.matrix[0] = self._test_row()
        self._after_row(config.num_tasks - 1, speed)

    # --- optimisation ---------------------------------------------------------------------------
    def _optimise(self, stream, iterations: int, validate: Callable[[], float]) -> float:
        """Train for ``iterations`` steps with a fresh Adam; returns iterations per second."""
        config, method = self.config, self.method
        params = method.parameters()
        optimizer = Adam(params, lr=config.lr, betas=(config.adam_beta1, 0.999), weight_decay=config.weight_decay)
        best = (-math.inf, None)
        started = time.perf_counter()
        # Validation only matters for --use_best_models (and the debug log): skip it otherwise.
        validating = config.use_best_models or log.isEnabledFor(logging.DEBUG)
        for it in range(iterations):
            if validating and (it % config.val_iter == 0 or it == iterations - 1):
                score = validate()
                if config.use_best_models and score > best[0]:
                    best = (score, [p.detach().clone() for p in params])
            self._step(next(stream), optimizer, params, it)
        elapsed = time.perf_counter() - started
        if config.use_best_models and best[1] is not None:
            with torch.no_grad():
                for p, saved in zip(params, best[1]):
                    p.copy_(saved)
            log.debug("restored the best model (validation accuracy %.2f%%)", best[0])
        return iterations / elapsed if elapsed > 0 else float("inf")

    def _step(self, batch: Batch, optimizer: Adam, params: list[torch.Tensor], it: int) -> None:
        method, regularisers = self.method, self.regularisers
        task = _one_task(batch.task)
        weights = method.weights(task)
        if regularisers:
            weights = regularisers.watch(weights, task)
        logits = self.net.forward(batch.x, weights, batch.task, self.last_only, method.unit_gains(task))
        loss = task_loss(logits, batch.y, self.step_weights)
        penalty = method.penalty(task)
        for p in params:
            p.grad = None
        (loss if penalty is None else loss + penalty).backward()
        self._check_finite(loss, penalty, it)
        if self.config.clip_grad_norm != -1:
            _clip_grad_norm(params, self.config.clip_grad_norm)
        regularisers.before_step(optimizer)
        optimizer.step()
        regularisers.after_step()

    def _check_finite(self, loss: torch.Tensor, penalty: torch.Tensor | None, it: int) -> None:
        value = float(loss.detach()) + (0.0 if penalty is None else float(penalty.detach()))
        if self.regularisers:
            value += self.regularisers.penalty_value()
        if not math.isfinite(value):
            self.stop_reason, error = divergence(value, it)
            self.folder.write(self._result(finished=False), self.config.random_seed)
            raise error
        if it % LOSS_LOG_EVERY == 0 and log.isEnabledFor(logging.DEBUG):
            log.debug("iteration %d: loss %.4f", it, value)

    # --- evaluation --------------------------------------------------------------------------------
    def _validate(self, tasks: list[int]) -> float:
        scores = [accuracy(self.net, self.method, t, self.tasks[t].x_val, self.tasks[t].y_val, self.device)
                  for t in tasks]
        score = float(np.mean(scores))
        log.debug("validation accuracy %.2f%%", score)
        return score

    def _test_row(self) -> np.ndarray:
        row = np.empty(self.config.num_tasks)
        for k, data in enumerate(self.tasks):
            method = self.method
            if k < len(self.task_weights):  # from scratch: task k keeps its own network
                method = _Frozen(self.task_weights[k])
            row[k] = accuracy(self.net, method, k, data.x_test, data.y_test, self.device)
        return row

    def _after_row(self, t: int, speed: float) -> None:
        last = t == self.config.num_tasks - 1
        self.folder.write(self._result(finished=last), self.config.random_seed)
        if not last:  # before the report: a trial's report carries this checkpoint
            self._save_checkpoint(t)
        metrics = task_metrics(self.matrix, t, self.config.multitask, last)
        log.info("task %d: during %.2f%%, mean during %.2f%%, mean final %.2f%%, %.0f it/s",
                 t, metrics["accuracy_row"][t], metrics["during_mean"], metrics["final_mean"], speed)
        if self.report is not None:
            self.report(t, metrics)

    def _result(self, finished: bool) -> Result:
        return run_result(self.config, self.matrix, finished=finished, stop_reason=self.stop_reason,
                          out_dir=self.folder.path, seconds=self._seconds(), method=registry.run_name(self.config),
                          resumed_at=self.resumed_at, data_fingerprint=self.data_fingerprint,
                          compression_ratio=self.method.compression_ratio(self.net))


class _Frozen(Method):
    """Stored weights of one task (from-scratch evaluation)."""

    name = "frozen"

    def __init__(self, weights: torch.Tensor):
        self._weights = weights

    def weights(self, task: int) -> torch.Tensor:
        return self._weights


def _one_task(task: int | torch.Tensor) -> int:
    """Hooks take one task index; multitask batches (per-sample tasks) use task 0's weights."""
    return task if isinstance(task, int) else 0


@torch.no_grad()
def _clip_grad_norm(params: list[torch.Tensor], max_norm: float) -> None:
    """Like ``clip_grad_norm_`` (scale by max_norm / (norm + 1e-6) when above), without a host sync."""
    grads = [p.grad for p in params if p.grad is not None]
    norms = [torch.linalg.vector_norm(g) for g in grads]
    norm = norms[0] if len(norms) == 1 else torch.linalg.vector_norm(torch.stack(norms))
    scale = torch.clamp(max_norm / (norm + 1e-6), max=1.0)
    for g in grads:
        g.mul_(scale)
