"""Ray on the driver: start or join a cluster, run a sweep's Tuner (new or resumed) and fixed configurations.

Ray's Tune API changes often; keeping it in a few modules keeps that churn in one place: this one, the
trainables and callback Ray runs (``hpsearch.ray_trials``), the searcher (``hpsearch.ray_search``) and Ray's
environment defaults (``hpsearch.ray_env``, imported before Ray).
"""
from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path
from typing import Any

from hpsearch import ray_env  # noqa: F401 - Ray's environment before Ray is imported
import ray
from ray import tune
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler

from hpsearch import warm_start
from hpsearch.population import batch_groups  # run_configs has a parameter named population
from hpsearch.settings import SweepError, SweepSettings
from hpsearch.trial import OBJECTIVE, TrainFunction, TrialPlan, failure_metrics
from hpsearch.user_files import absolute
from hpsearch.ray_search import PopulationSearch, SweepSearch, searcher
# SweepCallback is also the name the tuner.pkl of older sweeps holds (hpsearch.ray_adapter.SweepCallback)
from hpsearch.ray_trials import MAX_RETRIES, SweepCallback, trainable

_OptunaSearch, _PopulationSearch = SweepSearch, PopulationSearch  # the names tuner.pkl of older sweeps holds


def start(address: str | None, verbose: bool) -> bool:
    """Join ``address`` or start a private local instance; True when this call started Ray."""
    if ray.is_initialized():
        return False
    quiet = {"logging_level": logging.INFO if verbose else logging.ERROR, "log_to_driver": verbose}
    if address:
        ray.init(address=address, **quiet)
    else:
        ray.init(address="local", num_cpus=len(os.sched_getaffinity(0)), include_dashboard=False, **quiet)
    return True


def stop(started: bool) -> None:
    if started:
        ray.shutdown()


def wait_for_nodes(address: str, count: int, timeout_s: float) -> int:
    """Join the running cluster at ``address`` and wait until ``count`` nodes are alive, at most
    ``timeout_s``; returns how many are.  (ray.init waits minutes for a head that is not up yet.)"""
    deadline = time.monotonic() + timeout_s
    ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
    try:
        while (alive := sum(node["Alive"] for node in ray.nodes())) < count and time.monotonic() < deadline:
            time.sleep(1)
        return alive
    finally:
        ray.shutdown()


def _trial_dirname(trial: Any) -> str:
    return f"trial_{trial.trial_id}"


def _scheduler(name: str, num_tasks: int) -> TrialScheduler:
    if name == "none":
        return FIFOScheduler()
    # Rungs at tasks 1, 2, 4, ...; the last task is never a rung (its numbers come in the final report).
    return ASHAScheduler(time_attr="task", metric=OBJECTIVE, mode="max", max_t=max(num_tasks - 1, 1),
                         grace_period=1, reduction_factor=2, stop_last_trials=False)


def fit(settings: SweepSettings, plan: TrialPlan, train: TrainFunction | None) -> None:
    """Run a new sweep whose Ray experiment is the sweep folder itself."""
    sweep_dir, size = settings.sweep_dir, settings.population
    tuner = tune.Tuner(
        trainable(plan, train, size),
        tune_config=tune.TuneConfig(
            search_alg=searcher(plan, settings.search_seed, settings.max_concurrent, size, settings.num_samples,
                                warm_start.points(plan) if settings.warm_start else None, settings.sampler),
            scheduler=_scheduler(settings.scheduler, plan.config({}, "").num_tasks),
            num_samples=math.ceil(settings.num_samples / size), reuse_actors=True,
            trial_dirname_creator=_trial_dirname),
        run_config=tune.RunConfig(
            name=sweep_dir.name, storage_path=str(sweep_dir.parent), verbose=2 if settings.verbose else 0,
            callbacks=[SweepCallback(sweep_dir, plan, settings.num_samples), JsonLoggerCallback(),
                       CSVLoggerCallback()],
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            failure_config=tune.FailureConfig(max_failures=MAX_RETRIES, fail_fast=False)))
    tuner.fit()


def resume(sweep_dir: Path, plan: TrialPlan, train: TrainFunction | None, size: int = 1) -> None:
    """Continue a sweep whose driver died: ended trials stay, unfinished ones run again."""
    if not tune.Tuner.can_restore(str(sweep_dir)):
        raise SweepError(f"{sweep_dir}: no Ray experiment to resume (its driver stopped before Ray started)")
    tuner = tune.Tuner.restore(str(sweep_dir), trainable=trainable(plan, train, size), resume_errored=True)
    # tuner._local_tuner: Ray 2.60's private API (pinned in setup.cfg); test_sweep_folder_moves.py catches a change
    for callback in tuner._local_tuner.get_run_config().callbacks:  # pickled where the folder was before
        if isinstance(callback, SweepCallback):
            callback.__init__(sweep_dir, plan, callback.total)
    tuner.fit()


# --- fixed configurations (hpsearch seeds) ------------------------------------------------------

def _fixed_trainable(config: dict[str, Any], configs: list[Any], train: TrainFunction | None) -> None:
    from cl_rnn.population import train_population

    if train is None:
        from cl_rnn.train import train
    fixed = [configs[k] for k in config["indices"]]
    try:
        outcomes = train_population(fixed) if len(fixed) > 1 else [train(fixed[0])]
    except Exception as error:  # noqa: BLE001 - one failed rerun must not stop the others
        outcomes = [error] * len(fixed)
    tune.report({"errors": [failure_metrics(outcome, one.out_dir)["error"] if isinstance(outcome, BaseException)
                            else "" for one, outcome in zip(fixed, outcomes)]})


def run_configs(configs: list[Any], storage: Path, address: str | None = None, verbose: bool = False,
                max_concurrent: int | None = None, train: TrainFunction | None = None,
                population: int = 1) -> list[str]:
    """Run fixed ``Config``s as Ray trials, one CPU each; each writes its own ``out_dir``.

    With ``population`` P > 1, up to P configurations that can train together
    (``cl_rnn.population``) share one trial; 0: as many as spread them evenly over the cluster's
    CPUs (a population trains on one CPU).  Returns each config's error text ("" when it ran);
    the Ray experiment goes under ``storage``.
    """
    started = start(address, verbose)
    fixed = tune.with_parameters(_fixed_trainable, configs=configs, train=train)
    if population == 0:
        population = math.ceil(len(configs) / max(1, int(ray.cluster_resources().get("CPU", 1))))
    groups = batch_groups(dict(enumerate(configs)), population if train is None else 1)
    try:
        tuner = tune.Tuner(
            tune.with_resources(fixed, {"cpu": 1}),
            param_space={"indices": tune.grid_search(groups)},
            tune_config=tune.TuneConfig(reuse_actors=True, max_concurrent_trials=max_concurrent),
            run_config=tune.RunConfig(
                name=f"ray_{time.strftime('%Y%m%d-%H%M%S')}", storage_path=absolute(str(storage)),
                verbose=2 if verbose else 0, failure_config=tune.FailureConfig(max_failures=MAX_RETRIES)))
        grid = tuner.fit()
    finally:
        stop(started)
    errors = ["the rerun did not report"] * len(configs)
    for result in grid:
        indices = result.config["indices"]
        failure = str(result.error) if result.error else "the rerun did not report"
        reported = (result.metrics or {}).get("errors") or [failure] * len(indices)
        for k, error in zip(indices, reported):
            errors[k] = error
    return errors
