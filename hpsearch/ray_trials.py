"""What Ray runs for a sweep's trials and what it calls back: the trainables and ``SweepCallback``.

The trainables run in Ray's workers, one sweep trial (its run folder ``run/`` in the trial's folder) or one
population trial (``hpsearch.population``); each attempt of a trial records its process and brings the
checkpoint Tune kept of the attempt before.  ``SweepCallback`` runs in the driver: it keeps trials.csv and
the Optuna journal current as trials end.  ``hpsearch.ray_adapter`` hands both to the Tuner.
"""
from __future__ import annotations

import functools
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from hpsearch import ray_env  # noqa: F401 - Ray's environment before Ray is imported
import ray
from ray import tune

from cl_rnn import checkpoint, results
from hpsearch import journal, population, progress, records
from hpsearch.trial import OBJECTIVE, RUNNING, TrainFunction, TrialPlan, objectives, run_trial
from hpsearch.trial import ended_result

RUN_FOLDER = "run"  # inside each trial's folder
PID_FILE = "worker.pid"  # inside each trial's folder: the process running the trial (its latest attempt)
# A trial whose process dies (killed, out of memory, node lost) runs again from its last finished task.
MAX_RETRIES = 2


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


# --- the driver's records of ended trials --------------------------------------------------------

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
