"""``train_population(configs)``: P runs of one method and network shape, trained together.

Members may differ in the flags of ``MEMBER_FLAGS`` (seed, learning rate, weight decay, clipping,
regulariser strengths, mask fraction, criterion, run folder); every other flag must be equal
(``population_key``).  All members' weights are one [P, W] tensor, trained by one loop: the loss
gradient (``nets/population_lstm.py``, the single run's kernels member by member), the
regularisers (each extra's ``Regulariser``, vector ops over [P, W]: a single run uses the same ones
with P = 1), clipping and Adam (``population_optim.py``, each member's own Adam over its row).  A
member's numbers are bit for bit those of its single run (same ops, same order).  Each member is
still its own run: it draws its batches and initial weights from its own generators as its single
run would (``population_members.py``), writes its own run folder with ``cl_rnn.results``, is
reported on after every task with ``report(member, task, metrics)`` (``member``: its position in
``configs``; ``metrics`` as ``train``'s), and leaves the population when its
``--during_acc_criterion`` stops it or its loss diverges, so it costs nothing afterwards.

The result per member is its ``Result``, or the ``TrainingDiverged`` its single run would have
raised.  ``fallback_reason(config)`` says why a configuration cannot join a population (multitask,
hypernetworks, replay, other network shapes; the registry's ``not_batched``): run those with ``train``.
With ``--use_cuda`` and a GPU the members train there, their loss gradient in batched torch ops
(``torch_ops``), not member by member through the CPU's C kernel.

With ``checkpoint=PATH`` the population saves its whole state there after every task but the last
(weights, each member's matrix, generators and outcome, the regularisers' state); called again with
the same configurations and path it continues after that task and ends bit for bit as the
uninterrupted population.  The file is removed when the population ends.
"""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import torch

from cl_rnn import checkpoint as checkpoints
from cl_rnn.batches import time_major
from cl_rnn.config import Config
from cl_rnn.data.fingerprint import fingerprint
from cl_rnn.evaluation import accuracy
from cl_rnn.methods import registry
from cl_rnn.methods.base import Members, Regulariser, add_penalty_grads, load_tensor_state, tensor_state
from cl_rnn.methods.ewc import task_fisher
from cl_rnn.nets.population_lstm import PopulationLSTM, supports
from cl_rnn.nets.rnn import NetSpec, RecurrentNet
from cl_rnn.population_members import BestModels, Member, MemberReport
from cl_rnn.population_optim import PopulationAdam, aligned_empty, aligned_rows, clip_by_member_norm
from cl_rnn.results import Result
from cl_rnn.rules import check
from cl_rnn.prepare import choose_device, data_source, run_tasks
from cl_rnn.train import TrainingDiverged, divergence

MEMBER_FLAGS = ("random_seed", "lr", "weight_decay", "clip_grad_norm", "adam_beta1", "ewc_lambda", "si_lambda",
                "orthogonal_hh_reg", "mask_fraction", "during_acc_criterion", "out_dir", "overwrite",
                "loglevel_info")
DRAW_BLOCK = 256  # iterations of batch indices drawn at a time (per member)


def fallback_reason(config: Config) -> str | None:
    """Why ``config`` cannot train in a population (None: it can)."""
    reason = registry.not_batched(config)
    if reason:
        return reason
    if config.store_final_models:
        return "--store_final_models is not batched"
    if not supports(RecurrentNet(NetSpec.from_config(config))):
        return "only one LSTM layer without fc layers is batched"
    return None


def population_key(config: Config) -> tuple:
    """Configurations with equal keys can share a population."""
    flags = dataclasses.asdict(config)
    return tuple(sorted((name, value) for name, value in flags.items() if name not in MEMBER_FLAGS))


def train_population(configs: list[Config], report: MemberReport | None = None, tasks: list | None = None,
                     checkpoint: Path | str | None = None, torch_ops: bool | None = None
                     ) -> list[Result | TrainingDiverged]:
    """Train ``configs`` together; see the module docstring.  ``tasks`` overrides data loading;
    ``checkpoint``: the file to save to after every task and to continue from; ``torch_ops``: the
    loss gradient in batched torch ops (``nets/population_lstm.py``), default on a GPU only."""
    for config in configs:
        check(config)
        reason = fallback_reason(config)
        if reason:
            raise ValueError(f"train_population: {reason}; run it with cl_rnn.train.train")
    if len({population_key(c) for c in configs}) > 1:
        raise ValueError(f"train_population: members may differ only in {', '.join(MEMBER_FLAGS)}")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _Population(configs, report, tasks, None if checkpoint is None else Path(checkpoint), torch_ops).run()
    finally:
        torch.set_num_threads(threads)


class _Population:
    def __init__(self, configs: list[Config], report: MemberReport | None, tasks: list | None,
                 checkpoint: Path | None = None, torch_ops: bool | None = None):
        self.config = first = configs[0]
        self.report, self.checkpoint = report, checkpoint
        saved = checkpoints.population_state(checkpoint, configs)
        self.tasks = run_tasks(first, tasks)
        self.data_fingerprint = fingerprint(self.tasks)
        if saved is not None:  # before anything else: a population never continues on other data
            checkpoints.check_same_data(saved.get("data_fingerprint", ""), self.data_fingerprint,
                                        data_source(first, tasks is not None), checkpoint)
        self.net = RecurrentNet(NetSpec.from_config(first, input_size=self.tasks[0].x_train.shape[2]))
        self.device = choose_device(first)
        self.lstm = PopulationLSTM(self.net, first.ts_weighting, self.tasks[0].x_train.shape[1],
                                   self.device.type != "cpu" if torch_ops is None else torch_ops)
        started = time.perf_counter()
        self.members = [Member(k, c, self.net, started, self.data_fingerprint, self.device, reuse=saved is not None)
                        for k, c in enumerate(configs)]
        self.active = list(self.members)
        self.theta = aligned_rows(torch.stack([m.fresh_weights() for m in self.members]))
        self.regularisers = self._regularisers()
        self.first_task = 0
        if saved is not None:
            self._resume(saved)

    def _values(self, flag: str) -> list[float]:
        return [getattr(m.config, flag) for m in self.active]

    def _members(self) -> Members:
        return Members([m.config for m in self.active], self.net, self.theta, self.theta)

    def _regularisers(self) -> list[Regulariser]:
        """Each extra that a member selects (a member whose strength is off gets a zero column)."""
        members = self._members()
        return [spec.batched(members) for spec in registry.selected(*members.configs) if spec.role == "extra"]

    def run(self) -> list[Result | TrainingDiverged]:
        for t in range(self.first_task, self.config.num_tasks):
            if not self.active:
                break
            self._task(t)
        if self.checkpoint is not None:
            self.checkpoint.unlink(missing_ok=True)  # the population is over: nothing left to resume
        outcomes: list[Result | TrainingDiverged] = []
        for member in self.members:
            outcomes.append(member.error or member.result(finished=member.stop_reason is None))
        return outcomes

    # --- checkpoints ---------------------------------------------------------------------------
    def _state(self, task: int) -> dict[str, Any]:
        return {"configs": [dataclasses.asdict(m.config) for m in self.members], "task": task,
                "active": [m.index for m in self.active], "theta": self.theta,
                "members": [m.state() for m in self.members], "data_fingerprint": self.data_fingerprint,
                "regularisers": [tensor_state(reg) for reg in self.regularisers]}

    def _resume(self, saved: dict[str, Any]) -> None:
        """Continue after the saved task, exactly where the interrupted population was."""
        for member, state in zip(self.members, saved["members"]):
            member.load_state(state, resumed_at=saved["task"] + 1)
        self.active = [self.members[k] for k in saved["active"]]
        self.theta = aligned_rows(saved["theta"].to(self.device))
        self.regularisers = self._regularisers()
        for reg, state in zip(self.regularisers, saved["regularisers"]):
            load_tensor_state(reg, state)
        self.first_task = saved["task"] + 1

    # --- one task -------------------------------------------------------------------------------
    def _task(self, t: int) -> None:
        if self.config.train_from_scratch and t > 0:
            for k, member in enumerate(self.active):
                member.task_weights.append(self.theta[k].clone())
            self.theta = aligned_rows(torch.stack([m.fresh_weights() for m in self.active]))
            self.regularisers = self._regularisers()
        data = self.tasks[t]
        x = self.net.with_task_identity(time_major(data.x_train, self.device), t)  # once per task, not per step
        for reg in self.regularisers:
            reg.before_task(self.theta, t)
        self._optimise(t, x, data.y_train.to(self.device))
        if not self.active:
            return  # every member diverged in this task: nothing left to update or evaluate
        last = t == self.config.num_tasks - 1
        for reg in self.regularisers:
            reg.after_task(self.theta, t, last, lambda: self._fisher(t, data))
        recorded = [(member, member.record(t, member.evaluate(self.theta[k], self.tasks, accuracy)))
                    for k, member in enumerate(self.active)]
        self._drop_stopped()
        if self.checkpoint is not None and not last:  # before the reports: a trial's report carries it
            checkpoints.write_payload(self.checkpoint, self._state(t))
        if self.report is not None:
            for member, metrics in recorded:
                self.report(member.index, t, metrics)

    def _fisher(self, t: int, data) -> torch.Tensor:
        return torch.stack([task_fisher(self.config, self.net, self.theta[k], data, t,
                                        None if member.masks is None else member.masks[t], member.numpy_rng)
                            for k, member in enumerate(self.active)])

    def _optimise(self, t: int, x: torch.Tensor, y: torch.Tensor) -> None:
        iterations, batch = self.config.n_iter, self.config.batch_size
        draws = [m.draws(len(y)) for m in self.active]
        self.optimizer = PopulationAdam(self.theta, self._values("lr"), self._values("adam_beta1"),
                                        self._values("weight_decay"))
        self.max_norm = self._members().column("clip_grad_norm")
        self.clipped = self.max_norm != -1
        self.grad = aligned_empty(*self.theta.shape, self.theta)
        self.best = BestModels(self.theta) if self.config.use_best_models else None
        block = None
        for it in range(iterations):
            if self.best is not None and (it % self.config.val_iter == 0 or it == iterations - 1):
                self.best.offer(self._validation_scores(t), self.theta)
            if it % DRAW_BLOCK == 0:
                count = min(DRAW_BLOCK, iterations - it) * batch
                block = torch.stack([torch.from_numpy(d.take(count)).view(-1, batch) for d in draws], 1)
            index = block[it % DRAW_BLOCK].to(self.device)  # [P, B]
            survivors = self._step(t, x, y, index, it)
            if survivors is not None:
                block, draws = block[:, survivors], [draws[k] for k in survivors.tolist()]
                if not self.active:
                    return
        if self.best is not None:
            self.best.restore(self.theta)

    def _validation_scores(self, t: int) -> torch.Tensor:
        data = self.tasks[t]
        return torch.tensor([member.evaluate_on(self.theta[k], t, data.x_val, data.y_val, accuracy)
                             for k, member in enumerate(self.active)], dtype=torch.float64)

    def _step(self, t: int, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor, it: int) -> torch.Tensor | None:
        """One iteration of every active member; the members kept when some diverged, else None.

        A member whose loss is not finite leaves before the update; the others make theirs."""
        xs = [x.index_select(1, rows) for rows in index]
        gains = [m.gains(t) for m in self.active]
        grad, theta = self.grad, self.theta
        losses = add_penalty_grads(self.regularisers, theta, grad, t,
                                   self.lstm.loss_and_grad(theta, xs, y[index], t, gains, grad))
        survivors = None
        finite = torch.isfinite(losses)
        if not bool(finite.all()):
            survivors = self._diverged(finite, losses, it)
            if not self.active:
                return survivors
            # the others still take this step, as their single runs do
            grad, theta = aligned_rows(grad[survivors]), self.theta
            self.grad = grad
        clip_by_member_norm(grad, self.max_norm, self.clipped)
        for reg in self.regularisers:
            reg.before_step(theta, grad, self.optimizer.pairs())
        self.optimizer.step(grad)
        for reg in self.regularisers:
            reg.after_step(theta, grad)
        return survivors

    # --- members leaving ------------------------------------------------------------------------
    def _diverged(self, finite: torch.Tensor, losses: torch.Tensor, it: int) -> torch.Tensor:
        """Stop the members whose loss is not finite; mid-task, the task's optimiser, clipping and
        best-model state leave with them.  Returns the positions of the members kept."""
        for k in torch.nonzero(~finite).flatten().tolist():
            self.active[k].stop(*divergence(float(losses[k]), it))
        index = self._drop_stopped()
        self.optimizer.keep(index.tolist(), self.theta)
        self.max_norm, self.clipped = self.max_norm[index], self.clipped[index]
        if self.best is not None:
            self.best.keep(index)
        return index

    def _drop_stopped(self) -> torch.Tensor | None:
        """Stopped members leave the weights and the regularisers' state; the positions kept, or
        None when every member goes on."""
        keep = [k for k, m in enumerate(self.active) if m.stop_reason is None]
        if len(keep) == len(self.active):
            return None
        index = torch.tensor(keep, dtype=torch.long)
        self.active = [self.active[k] for k in keep]
        self.theta = aligned_rows(self.theta[index])
        for reg in self.regularisers:
            reg.keep(index)
        return index

