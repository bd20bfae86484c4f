"""Everything that touches Ray: start or join a cluster, the trainable, the Tuner, the callback.

Ray's Tune API changes often; keeping it in this one module keeps that churn in one place.
The environment defaults below are set before Ray is imported: quiet output, no usage stats, results without
the objective allowed (a pruned trial's last report has none), an experiment snapshot every 2 s so a killed
driver loses little, Ray's JSON and CSV result logs without its TensorBoard one (which complains about the -inf
of failed trials), and a trial's failure told in one line by SweepCallback instead of Ray's traceback.
"""
from __future__ import annotations

import functools
import logging
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

for _name, _value in {"RAY_AIR_NEW_OUTPUT": "0", "RAY_USAGE_STATS_ENABLED": "0",
                      "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1", "TUNE_GLOBAL_CHECKPOINT_S": "2",
                      "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1", "TUNE_PRINT_ALL_TRIAL_ERRORS": "0"}.items():
    os.environ.setdefault(_name, _value)

import ray  # noqa: E402
from ray import tune  # noqa: E402
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback  # noqa: E402
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler  # noqa: E402

from cl_rnn import checkpoint, results  # noqa: E402
from hpsearch import journal, population, progress, records, warm_start  # noqa: E402
from hpsearch.population import batch_groups  # noqa: E402 - run_configs has a parameter named population
from hpsearch.sweep import SweepError, SweepSettings  # noqa: E402
from hpsearch.trial import OBJECTIVE, RUNNING, TrainFunction, TrialPlan, objectives, run_trial  # noqa: E402
from hpsearch.trial import ended_result, failure_metrics  # noqa: E402
from hpsearch.user_files import absolute  # noqa: E402
from hpsearch.ray_search import PopulationSearch, SweepSearch, searcher  # noqa: E402

_OptunaSearch, _PopulationSearch = SweepSearch, PopulationSearch  # the names tuner.pkl of older sweeps holds

RUN_FOLDER = "run"  # inside each trial's folder
PID_FILE = "worker.pid"  # inside each trial's folder: the process running the trial (its latest attempt)
# A trial whose process dies (killed, out of memory, node lost) runs again from its last finished task.
MAX_RETRIES = 2


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


def _trial_dir(plan: TrialPlan) -> Path:
    return Path(plan.sweep_dir) / Path(tune.get_context().get_trial_dir()).name


def _start_attempt(trial_dir: Path) -> str:
    """Record which process runs this attempt of the trial; returns the node it runs on."""
    trial_dir.mkdir(parents=True, exist_ok=True)
    (trial_dir / PID_FILE).write_text(f"{os.getpid()}\n")
    return ray.get_runtime_context().get_node_id()


def _report_with(metrics: dict[str, Any], files: list[Path]) -> None:
    """``tune.report``; ``files`` (checkpoints) travel with it: Tune copies them into the trial's storage."""
    if not files:
        tune.report(metrics)
        return
    with tempfile.TemporaryDirectory() as folder:
        for path in files:
            shutil.copy2(path, Path(folder) / path.name)
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))


def _trainable(config: dict[str, Any], plan: TrialPlan, train: TrainFunction | None) -> None:
    if train is None:
        from cl_rnn.train import train
    trial_dir = _trial_dir(plan)
    run_dir = trial_dir / RUN_FOLDER
    prepare_run_folder(run_dir, tune.get_checkpoint())
    node = _start_attempt(trial_dir)
    run_trial(config, plan, run_dir, lambda metrics: _report({**metrics, "node": node}, run_dir),
              functools.partial(_train_unless_ended, train=train))


def _train_unless_ended(config: Any, report: Any = None, train: TrainFunction | None = None) -> Any:
    """A trial that ended before (see ``hpsearch.trial.ended_result``) reports its saved result."""
    ended = ended_result(config)
    return ended if ended is not None else train(config, report=report)


def prepare_run_folder(run_dir: Path, saved: tune.Checkpoint | None) -> None:
    """Before a trial's attempt: keep the run folder's own checkpoint (train resumes from it) or its
    ended run, else bring Tune's copy (another node ran the earlier attempt), else clear what a dead
    attempt left."""
    if checkpoint.path_in(run_dir).is_file() or results.read_ended(run_dir) is not None:
        return
    shutil.rmtree(run_dir, ignore_errors=True)
    if saved is not None:
        with saved.as_directory() as folder:
            if (Path(folder) / checkpoint.FILE).is_file():
                checkpoint.path_in(run_dir).parent.mkdir(parents=True)
                shutil.copy2(Path(folder) / checkpoint.FILE, checkpoint.path_in(run_dir))


def _report(metrics: dict[str, Any], run_dir: Path) -> None:
    """``tune.report``; a running trial's report carries the checkpoint of the task it reports."""
    saved = checkpoint.path_in(run_dir)
    _report_with(metrics, [saved] if metrics.get("state") == RUNNING and saved.is_file() else [])


def _trial_dirname(trial: Any) -> str:
    return f"trial_{trial.trial_id}"


def _population_trainable(config: dict[str, Any], plan: TrialPlan, train: TrainFunction | None) -> None:
    train_population = None  # a replacement trainer (--train) cannot be batched: its members run one by one
    if train is None:
        from cl_rnn.population import train_population
        from cl_rnn.train import train
    trial_dir = _trial_dir(plan)
    node = _start_attempt(trial_dir)
    bring_population_checkpoints(trial_dir, tune.get_checkpoint())
    sent: dict[str, int] = {}
    population.run_population_trial(
        config[population.MEMBERS], plan, trial_dir,
        lambda metrics: _report_population({**metrics, "node": node}, trial_dir, sent), train_population, train)


def _population_checkpoints(folder: Path) -> list[Path]:
    return sorted(folder.glob(population.CHECKPOINT.format("*")))


def bring_population_checkpoints(trial_dir: Path, saved: tune.Checkpoint | None) -> None:
    """A retry on a fresh node (no checkpoint of the trial's own here) takes the ones Tune kept."""
    if saved is None or _population_checkpoints(trial_dir):
        return
    with saved.as_directory() as folder:
        for path in _population_checkpoints(Path(folder)):
            shutil.copy2(path, trial_dir / path.name)


def _report_population(metrics: dict[str, Any], trial_dir: Path, sent: dict[str, int]) -> None:
    """``tune.report``; a running population's report carries its checkpoints when one changed since
    the last report that carried them (``sent``: file name -> modification time)."""
    current = {path.name: path.stat().st_mtime_ns for path in _population_checkpoints(trial_dir)}
    if metrics.get("state") != RUNNING or current == sent:
        _report_with(metrics, [])
        return
    _report_with(metrics, [trial_dir / name for name in current])
    sent.clear()
    sent.update(current)


def trainable(plan: TrialPlan, train: TrainFunction | None, size: int = 1) -> Any:
    function = _population_trainable if size > 1 else _trainable
    return tune.with_resources(tune.with_parameters(function, plan=plan, train=train), {"cpu": 1})


class SweepCallback(tune.Callback):
    """Keeps trials.csv and the Optuna journal current and prints one line per ended trial."""

    def __init__(self, sweep_dir: Path, plan: TrialPlan, total: int) -> None:
        self.sweep_dir, self.plan, self.total = Path(sweep_dir), plan, total
        self._study = None

    def __getstate__(self) -> dict[str, Any]:  # Ray pickles the callback: never the storage
        return {"sweep_dir": self.sweep_dir, "plan": self.plan, "total": self.total}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["sweep_dir"], state["plan"], state["total"])

    def setup(self, **info: Any) -> None:
        self.rows = records.read_rows(self.sweep_dir / records.TRIALS_CSV)
        self.intermediate: dict[str, dict[int, float]] = {}
        self.reconciled = False

    @property
    def study(self) -> Any:
        if self._study is None:
            self._study = journal.open_study(self.sweep_dir / journal.JOURNAL, self.sweep_dir.name, self.plan.metric)
            self.mirrored = journal.mirrored_ids(self._study)
        return self._study

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        if not self.reconciled and trials:
            # After a resume, rows of trials the restored experiment never knew are gone for good.
            known = {t.trial_id for t in trials}
            self.rows = {tid: row for tid, row in self.rows.items() if population.ray_trial_id(tid) in known}
            self.reconciled = True

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        for row_id, _, member in _members(trial.trial_id, trial.config, result):
            if OBJECTIVE in member and "task" in member:  # two objectives: none (Optuna keeps no per-step values)
                self.intermediate.setdefault(row_id, {})[int(member["task"])] = float(member[OBJECTIVE])

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._ended(trial, trials, errored=False)

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        print(progress.fault_line(trial.trial_id, _error_text(trial), trial.num_failures, MAX_RETRIES),
              file=sys.stderr, flush=True)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.on_trial_recover(iteration, trials, trial)
        self._ended(trial, trials, errored=True)

    def _ended(self, trial: Any, trials: list, errored: bool) -> None:
        ended = []
        for row_id, params, result in _members(trial.trial_id, trial.config, trial.last_result or {}):
            row = records.trial_row(row_id, params, result, errored, _error_text(trial), self.sweep_dir)
            self.rows[row_id] = row
            ended.append((row, params, None if errored else [result.get(key) for key in objectives(self.plan.metric)]))
        records.write_rows(self.sweep_dir / records.TRIALS_CSV, self.rows.values())
        study = self.study
        for row, params, values in ended:
            if row["trial_id"] not in self.mirrored:
                journal.mirror(study, self.plan.method, params, row, values,
                               self.intermediate.get(row["trial_id"], {}), self.plan.base_flags, self.plan.grid)
                self.mirrored.add(row["trial_id"])
        running = sum(t.status == "RUNNING" for t in trials if t is not trial)
        for k, (row, _, _) in enumerate(ended):
            print(progress.trial_line(row, len(self.rows) - len(ended) + k + 1, self.total), flush=True)
        if sys.stdout.isatty():
            print("  " + progress.counts_text(self.rows.values(), self.total, running), flush=True)


def _members(trial_id: str, config: dict[str, Any], result: dict[str, Any]) -> list[tuple[str, dict, dict]]:
    """(row id, sampled params, last result) of each Optuna trial a Ray trial carries."""
    if population.MEMBERS not in config:
        return [(trial_id, config, result)]
    reported = result.get(population.MEMBERS) or []
    return [(population.member_id(trial_id, k), params, reported[k] if k < len(reported) else {})
            for k, params in enumerate(config[population.MEMBERS])]


def _error_text(trial: Any) -> str:
    path = trial.error_file
    if not path or not Path(path).is_file():
        return ""
    lines = [line for line in Path(path).read_text().splitlines() if line.strip()]
    text = lines[-1].strip() if lines else ""
    return text if len(text) <= 160 else text[:157] + "..."


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
