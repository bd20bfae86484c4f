"""Population trials (``hpsearch run --population P``): one Ray trial trains P Optuna trials together.

The searcher asks Optuna P times per Ray trial.  The first member is sampled freely; the others
are enqueued with the first's values of every parameter that fixes the network and the method
(``shared_params``: all but ``cl_rnn.population.MEMBER_FLAGS`` and the gates), so the sampler
chooses only their continuous hyperparameters, and the P configurations can share one
``train_population`` pass.  Each member is its own Optuna trial and its own trials.csv row (trial
id ``<ray trial>-m<k>``, run folder ``trial_<id>/run_<k>``), told its own outcome.

A configuration that cannot be batched (``cl_rnn.population.fallback_reason``, e.g. a sampled
architecture of two layers) trains its members one after the other inside the same trial; a method
that never can (hypernetwork, replay, multitask) runs plain single trials instead.  The trial's
reports carry every member's latest metrics under ``members``; the scheduler sees the best
member's objective (ASHA stops a population by its best member).  With a replacement trainer
(``--train``) members always run one by one.

A trial whose process dies is retried from its last finished task: each batched group keeps
``train_population``'s checkpoint in the trial folder (``CHECKPOINT``), a member trained alone
keeps ``train``'s in its run folder; members with nothing to continue from start over.  A group
whose members all ended in an earlier attempt reports their saved results instead of training.
"""
from __future__ import annotations

import math
import shutil
import time
from pathlib import Path
from typing import Any, Callable

import torch

from cl_rnn import checkpoint
from cl_rnn.population import MEMBER_FLAGS, fallback_reason, population_key
from hpsearch.trial import (FINISHED, OBJECTIVE, RUNNING, Report, TrainFunction, TrialPlan, duration,
                            ended_result, failure_metrics, result_metrics, task_metrics, with_objective)
from search_spaces._common import GATES

MEMBERS = "members"  # a population trial's config and reports: one entry per member
MEMBER_SEP = "-m"
RUN_FOLDER = "run_{}"
CHECKPOINT = "population_{}.pt"  # a batched group's checkpoint in the trial folder, named by its first member


def member_id(trial_id: str, member: int) -> str:
    return f"{trial_id}{MEMBER_SEP}{member}"


def ray_trial_id(row_id: str) -> str:
    """The Ray trial a trials.csv row belongs to (a member's row or a plain trial's)."""
    return str(row_id).split(MEMBER_SEP)[0]


def shared_params(params: dict[str, Any]) -> dict[str, Any]:
    """The first member's parameters that every member of its population takes."""
    return {name: value for name, value in params.items() if name not in MEMBER_FLAGS and name not in GATES}


def notice(plan: TrialPlan, sample: dict[str, Any]) -> str | None:
    """One line when the method's configurations cannot be batched (its members run one by one)."""
    reason = fallback_reason(plan.config(sample, ""))
    if reason is None:
        return None
    return f"hpsearch: --population: {plan.method} is not batched ({reason}); running single trials"


def run_population_trial(members: list[dict[str, Any]], plan: TrialPlan, trial_dir: Path, report: Report,
                         train_population: Callable[..., list] | None, train: TrainFunction) -> list[dict[str, Any]]:
    """Train the members' configurations; report after every member's task, then once at the end.

    Without ``train_population`` (a replacement trainer) every member runs alone with ``train``."""
    torch.set_num_threads(1)
    started = time.perf_counter()
    latest: list[dict[str, Any]] = [{"state": RUNNING} for _ in members]
    run_dirs = [trial_dir / RUN_FOLDER.format(k) for k in range(len(members))]
    configs: dict[int, Any] = {}
    for k, params in enumerate(members):
        try:
            configs[k] = plan.config(params, run_dirs[k])
        except Exception as error:  # noqa: BLE001 - a bad configuration fails its member only
            shutil.rmtree(run_dirs[k], ignore_errors=True)
            latest[k] = failure_metrics(error, run_dirs[k])
    groups = batch_groups(configs) if train_population is not None else [[k] for k in configs]
    ended = {k: ended_result(config) for k, config in configs.items()}  # results of an earlier attempt
    for group in groups:
        _clear_unless_resumable(group, ended, run_dirs, trial_dir)

    def on_task(k: int, task: int, metrics: dict[str, Any]) -> None:
        if not metrics.get("finished") and task < configs[k].num_tasks - 1:
            latest[k] = with_objective({**task_metrics(metrics), "state": RUNNING}, plan.metric)
            report(population_metrics(latest, running=True))

    for group in groups:
        _train_group(group, configs, ended, run_dirs, latest, on_task, train_population, train, trial_dir)
    latest = [with_objective({**m, "duration": duration(m, started)}, plan.metric) for m in latest]
    report(population_metrics(latest, running=False))
    return latest


def batch_groups(configs: dict[int, Any], size: int | None = None) -> list[list[int]]:
    """Keys of the configurations to train together (equal ``population_key``), at most ``size``
    per group; a configuration that cannot be batched is a group of its own."""
    groups: dict[Any, list[list[int]]] = {}
    for k, config in configs.items():
        key = population_key(config) if fallback_reason(config) is None else ("single", k)
        chunks = groups.setdefault(key, [[]])
        if len(chunks[-1]) == size:
            chunks.append([])
        chunks[-1].append(k)
    return [chunk for chunks in groups.values() for chunk in chunks]


def group_checkpoint(trial_dir: Path, group: list[int]) -> Path:
    return trial_dir / CHECKPOINT.format(group[0])


def _clear_unless_resumable(group: list[int], ended: dict[int, Any], run_dirs: list[Path], trial_dir: Path) -> None:
    """Before an attempt: keep what an earlier attempt left to continue from, clear the rest.

    A group of several members trains as one population (``batch_groups``); one member trains alone."""
    if all(ended[k] is not None for k in group):
        return
    if len(group) > 1:
        if not group_checkpoint(trial_dir, group).is_file():
            for k in group:
                shutil.rmtree(run_dirs[k], ignore_errors=True)
        return
    for k in group:
        if not checkpoint.path_in(run_dirs[k]).is_file() and ended[k] is None:
            shutil.rmtree(run_dirs[k], ignore_errors=True)


def _train_group(group, configs, ended, run_dirs, latest, on_task, train_population, train, trial_dir) -> None:
    try:
        if all(ended[k] is not None for k in group):  # the group ended in an earlier attempt: its results stand
            outcomes = [ended[k] for k in group]
        elif len(group) == 1:
            (k,) = group
            try:
                outcomes = [train(configs[k], report=lambda task, m: on_task(k, task, m))]
            except Exception as error:  # noqa: BLE001 - as a single trial: this member failed
                outcomes = [error]
        else:
            outcomes = train_population([configs[k] for k in group],
                                        report=lambda member, task, m: on_task(group[member], task, m),
                                        checkpoint=group_checkpoint(trial_dir, group))
    except Exception as error:  # noqa: BLE001 - the whole group failed (e.g. its data)
        outcomes = [error] * len(group)
    for k, outcome in zip(group, outcomes):
        latest[k] = (failure_metrics(outcome, run_dirs[k]) if isinstance(outcome, BaseException)
                     else result_metrics(outcome))


def population_metrics(members: list[dict[str, Any]], running: bool) -> dict[str, Any]:
    """A population trial's report: every member's metrics, and the best member's objective."""
    objectives = [m[OBJECTIVE] for m in members if OBJECTIVE in m and math.isfinite(m[OBJECTIVE])]
    tasks = [m["task"] for m in members if "task" in m]
    payload: dict[str, Any] = {MEMBERS: [dict(m) for m in members], "state": RUNNING if running else FINISHED,
                               "task": max(tasks) if tasks else 0}
    if objectives:
        payload[OBJECTIVE] = max(objectives)
    return payload
