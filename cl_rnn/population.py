"""``train_population(configs)``: the training loop, for P runs of one method and network shape at once.

A single run is a population of one (``cl_rnn.train.train``).  For each task: the learner's
``begin`` (the method's and regularisers' hooks, a fresh Adam per member), ``--n_iter`` iterations
of ``gradients`` then ``update`` (validation every ``--val_iter`` iterations and at the last one,
before that iteration's update, for ``--use_best_models``), the learner's ``end`` (EWC's Fisher,
SI's importances), then each member's test accuracy on every task becomes a row of its accuracy
matrix.  ``--multitask`` trains on all tasks at once; ``--train_from_scratch`` starts each task from
fresh weights.  The learner (``cl_rnn.learners``) holds what is trained: the kernel learner every
member's weights as the rows of one [P, W] tensor, the autograd learner one member's method.

Members may differ in the flags of ``MEMBER_FLAGS`` (seed, learning rate, weight decay, clipping,
regulariser strengths, mask fraction, criterion, run folder); every other flag must be equal
(``population_key``).  A member's numbers are bit for bit those of its run alone.  Each member is
its own run (``population_members.py``): its own generators, run folder and reports (``report(member,
task, metrics)``, ``member`` its position in ``configs``); it leaves when its
``--during_acc_criterion`` stops it or its loss diverges, and costs nothing afterwards.  The outcome
per member is its ``Result``, or the ``TrainingDiverged`` that ended it.  ``fallback_reason(config)``
says why a configuration cannot join a population of several (hypernetworks, replay, multitask,
other network shapes: the registry's ``not_batched``): it runs alone.

Checkpoints (``cl_rnn.checkpoint``): after every task but the last the whole state is saved; run again
with the same configurations, it continues after that task and ends bit for bit as the uninterrupted
run.  A run alone keeps it in its run folder (the same command continues it, and a stop before the
first checkpoint removes what the run created: ``stops.explained``); a population, at ``checkpoint``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from cl_rnn import checkpoint as checkpoints
from cl_rnn import stops
from cl_rnn.config import Config
from cl_rnn.data.fingerprint import fingerprint
from cl_rnn.evaluation import accuracy
from cl_rnn.learners import kernel_reason, make_learner
from cl_rnn.learners.kernel import MemberView
from cl_rnn.memory import reuse_freed_memory
from cl_rnn.methods import registry
from cl_rnn.nets import lstm_kernel
from cl_rnn.nets.rnn import NetSpec, RecurrentNet
from cl_rnn.population_members import BestModels, Member, MemberReport
from cl_rnn.prepare import choose_device, data_source, run_tasks
from cl_rnn.results import Result
from cl_rnn.rules import check
from cl_rnn.stops import TrainingDiverged, divergence

log = logging.getLogger("cl_rnn.train")
MEMBER_FLAGS = ("random_seed", "lr", "weight_decay", "clip_grad_norm", "adam_beta1", "ewc_lambda", "si_lambda",
                "orthogonal_hh_reg", "mask_fraction", "during_acc_criterion", "out_dir", "overwrite",
                "loglevel_info")
LOSS_LOG_EVERY = 50


def fallback_reason(config: Config) -> str | None:
    """Why ``config`` cannot train in a population of several (None: it can); alone, everything trains."""
    reason = kernel_reason(config)
    if reason is None and config.store_final_models:
        return "--store_final_models keeps a run's own final checkpoint"
    return reason


def population_key(config: Config) -> tuple:
    """Configurations with equal keys can share a population."""
    flags = dataclasses.asdict(config)
    return tuple(sorted((name, value) for name, value in flags.items() if name not in MEMBER_FLAGS))


def train_population(configs: list[Config], report: MemberReport | None = None, tasks: list | None = None,
                     checkpoint: Path | str | None = None, torch_ops: bool | None = None, threads: int = 1
                     ) -> list[Result | TrainingDiverged]:
    """Train ``configs`` together; see the module docstring.  ``tasks`` overrides data loading;
    ``checkpoint``: the file to save to after every task and to continue from (default: a run alone
    keeps it in its run folder, a population none); ``torch_ops``: the loss gradient in batched torch
    ops (``nets/population_lstm.py``), default on a GPU only; ``threads``: the cores the run may use (the
    kernel learner's products and recurrence split by batch rows, several tasks' accuracies computed at
    once; every number as with one thread).  Every other torch op runs on one thread: a sweep's trials
    run side by side, one core each."""
    for config in configs:
        check(config)
    if len(configs) > 1:
        for config in configs:
            reason = fallback_reason(config)
            if reason:
                raise ValueError(f"train_population: {reason}; run it alone with cl_rnn.train.train")
        if len({population_key(c) for c in configs}) > 1:
            raise ValueError(f"train_population: members may differ only in {', '.join(MEMBER_FLAGS)}")
    reuse_freed_memory()
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: one thread is fastest, and trials run side by side
    pool = ThreadPoolExecutor(threads, thread_name_prefix="cl_rnn-eval") if threads > 1 else None
    try:
        population = _Population(configs, report, None if checkpoint is None else Path(checkpoint), torch_ops,
                                 threads, map if pool is None else pool.map)
        with population.explained():
            population.prepare(tasks)
            return population.run()
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        torch.set_num_threads(torch_threads)


class _Population:
    def __init__(self, configs: list[Config], report: MemberReport | None, checkpoint: Path | None,
                 torch_ops: bool | None, threads: int = 1, evaluate_map: Callable = map):
        """The members and their run folders; ``prepare`` loads the data and builds (or restores) the learner.
        ``threads``: the learner's; ``evaluate_map``: ``map`` over tasks' accuracies (a thread pool's)."""
        self.config = first = configs[0]  # the flags every member shares
        self.report, self.torch_ops, self.evaluate_map = report, torch_ops, evaluate_map
        self.threads = threads
        self.device = choose_device(first)
        lstm_kernel.preload()  # compiles on a machine's first run: overlap it with loading the data
        alone = len(configs) == 1
        self.in_folder = alone and checkpoint is None
        self.saved = (checkpoints.resumable(first, self.device) if self.in_folder
                      else checkpoints.population_state(checkpoint, configs, self.device))
        started = time.perf_counter()
        self.members = [Member(k, c, started, own_generators=not alone, reuse=self.saved is not None)
                        for k, c in enumerate(configs)]
        self.checkpoint = checkpoints.path_in(self.members[0].folder.path) if self.in_folder else checkpoint
        # the task of the last checkpoint; None: nothing to continue from, a stop discards the folder
        self.last_saved: int | None = None if self.saved is None else self.saved.task

    def explained(self) -> contextlib.AbstractContextManager:
        """A run alone: how it stopped, in one line (``stops.explained``)."""
        if not self.in_folder:
            return contextlib.nullcontext()
        return stops.explained(self.config, self.members[0].folder, lambda: self.last_saved)

    def prepare(self, tasks: list | None) -> None:
        first, saved = self.config, self.saved
        if torch.are_deterministic_algorithms_enabled() != first.deterministic_run:
            torch.use_deterministic_algorithms(first.deterministic_run)  # the first call costs 70 MB of memory
        self.tasks = run_tasks(first, tasks)
        self.data_fingerprint = fingerprint(self.tasks)
        if saved is not None:  # before anything else: a run never continues on other data
            where = self.members[0].folder.path if self.in_folder else self.checkpoint
            checkpoints.check_same_data(saved.data_fingerprint, self.data_fingerprint,
                                        data_source(first, tasks is not None), where)
        self.net = RecurrentNet(NetSpec.from_config(first, input_size=self.tasks[0].x_train.shape[2]))
        self.learner = make_learner(self.members, self.net, self.tasks, self.device, self.torch_ops, self.threads)
        for member in self.members:
            member.data_fingerprint, member.compression_ratio = self.data_fingerprint, self.learner.compression_ratio()
        self.active = list(self.members)
        self.first_task = 0
        if saved is not None:
            self._resume(saved)

    def run(self) -> list[Result | TrainingDiverged]:
        folders = ", ".join(str(m.folder.path) for m in self.members)
        log.info("method %s, %d main-net weights, device %s, run folder%s %s", registry.run_name(self.config),
                 self.net.num_params, self.device, "s" if len(self.members) > 1 else "", folders)
        if self.config.multitask:
            self._multitask()
        else:
            for t in range(self.first_task, self.config.num_tasks):
                if not self.active:
                    break
                self._task(t)
        self._end_checkpoint()
        return [member.outcome() for member in self.members]

    # --- checkpoints ---------------------------------------------------------------------------
    def _save(self, task: int, done: bool = False) -> None:
        if self.in_folder:
            self.members[0].folder.record(self.checkpoint)  # the first one's folder: the run's to discard
        checkpoints.save(self.checkpoint, checkpoints.RunState(
            configs=[dataclasses.asdict(m.config) for m in self.members], task=task,
            active=[m.index for m in self.active], learner=self.learner.state(),
            members=[m.state() for m in self.members], data_fingerprint=self.data_fingerprint, done=done))
        self.last_saved = task

    def _resume(self, saved: checkpoints.RunState) -> None:
        """Continue after the saved task, exactly where the interrupted run was."""
        for member, state in zip(self.members, saved.members):
            member.load_state(state, resumed_at=saved.task + 1)
        if 0 < len(saved.active) < len(self.members):
            self.learner.keep(torch.tensor(saved.active, dtype=torch.long))
        self.active = [self.members[k] for k in saved.active]
        self.learner.load_state(saved.learner)
        self.first_task = saved.task + 1
        log.info("resuming %s after task %d", self.checkpoint, saved.task)

    def _end_checkpoint(self) -> None:
        """The run is over: nothing left to resume, unless --store_final_models keeps the final state."""
        if self.in_folder and self.config.store_final_models and self.members[0].error is None:
            self._save(self.config.num_tasks - 1, done=True)
        elif self.in_folder:
            checkpoints.remove(self.members[0].folder.path)
        elif self.checkpoint is not None:
            self.checkpoint.unlink(missing_ok=True)

    # --- one task -------------------------------------------------------------------------------
    def _task(self, t: int) -> None:
        if self.config.train_from_scratch and t > 0:
            for k, member in enumerate(self.active):
                member.task_weights.append(self.learner.current_weights(k, t - 1))
            self.learner.fresh_start()
        self.learner.begin(t)
        speed = self._optimise(self.config.n_iter, [t])
        if not self.active:
            return  # every member diverged in this task: nothing left to update or evaluate
        last = t == self.config.num_tasks - 1
        self.learner.end(t, last)
        self._record(t, speed)

    def _multitask(self) -> None:
        """One network on every task at once: one phase of ``--n_iter`` iterations per task, one row."""
        tasks = list(range(self.config.num_tasks))
        self.learner.begin(None)
        speed = self._optimise(self.config.n_iter * len(tasks), tasks)
        if self.active:
            self.learner.end(None, True)
            self._record(tasks[-1], speed)

    def _record(self, t: int, speed: float) -> None:
        """Each member's test row after task ``t``; stops below a criterion; the checkpoint; the reports."""
        alone = len(self.members) == 1
        recorded = [(member, member.record(t, self._test_row(k, member), speed, alone))
                    for k, member in enumerate(self.active)]
        self._drop_stopped()
        if self.checkpoint is not None and t < self.config.num_tasks - 1:  # before the reports: a trial's
            self._save(t)                                                  # report carries it
        if self.report is not None:
            for member, metrics in recorded:
                self.report(member.index, t, metrics)

    def _test_row(self, k: int, member: Member) -> np.ndarray:
        current = self.learner.view(k)

        def test_accuracy(j: int) -> float:
            # from scratch: task j's own network, without masks
            view = MemberView(member.task_weights[j], None) if j < len(member.task_weights) else current
            return accuracy(self.net, view, j, self.tasks[j].x_test, self.tasks[j].y_test, self.device)

        return np.array(list(self.evaluate_map(test_accuracy, range(self.config.num_tasks))))

    def _optimise(self, iterations: int, validated: list[int]) -> float:
        """``iterations`` steps of every active member; returns iterations per second."""
        learner = self.learner
        best = BestModels(learner.trained()) if self.config.use_best_models else None
        started = time.perf_counter()
        for it in range(iterations):
            if best is not None and (it % self.config.val_iter == 0 or it == iterations - 1):
                best.offer(self._validation_scores(validated), learner.trained())
            losses = learner.gradients(it, iterations)
            finite = torch.isfinite(losses)
            if not bool(finite.all()):  # those members leave before the update; the others take it
                index = self._diverged(finite, losses, it)
                if best is not None:
                    best.keep(index)
                if not self.active:
                    return 0.0
            learner.update()
            if it % LOSS_LOG_EVERY == 0 and log.isEnabledFor(logging.DEBUG):
                log.debug("iteration %d: loss %s", it, ", ".join(f"{v:.4f}" for v in losses.tolist()))
        elapsed = time.perf_counter() - started
        if best is not None:
            best.restore(learner.trained())
        return iterations / elapsed if elapsed > 0 else float("inf")

    def _validation_scores(self, tasks: list[int]) -> torch.Tensor:
        """Each active member's mean validation accuracy over ``tasks``."""
        def member_score(k: int) -> float:
            view = self.learner.view(k)
            return np.mean(list(self.evaluate_map(
                lambda t: accuracy(self.net, view, t, self.tasks[t].x_val, self.tasks[t].y_val, self.device), tasks)))

        return torch.tensor([member_score(k) for k in range(len(self.active))], dtype=torch.float64)

    # --- members leaving ------------------------------------------------------------------------
    def _diverged(self, finite: torch.Tensor, losses: torch.Tensor, it: int) -> torch.Tensor:
        """Stop the members whose loss is not finite; returns the positions of the members kept."""
        for k in torch.nonzero(~finite).flatten().tolist():
            self.active[k].stop(*divergence(float(losses[k]), it))
        return self._drop_stopped()

    def _drop_stopped(self) -> torch.Tensor | None:
        """Stopped members leave the learner; the positions kept, or None when every member goes on."""
        keep = [k for k, m in enumerate(self.active) if m.stop_reason is None]
        if len(keep) == len(self.active):
            return None
        index = torch.tensor(keep, dtype=torch.long)
        self.active = [self.active[k] for k in keep]
        if self.active:  # the last to leave stay in the learner: a run alone's final checkpoint holds them
            self.learner.keep(index)
        return index
