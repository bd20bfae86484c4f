"""One sweep trial without Ray: sampled flags -> Config -> ``train`` -> metrics to report.

The Ray adapter (``hpsearch.tune``) wraps :func:`run_trial` in a function trainable and
passes ``tune.report`` as ``report``; tests and benchmarks can call it directly.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

import search_spaces
from cl_rnn.config import FIELDS, Config
from cl_rnn.rules import check
from hpsearch.records import FAILED, FINISHED, PRUNED, RUNNING

OBJECTIVE = "objective"  # what the searcher and the scheduler see: final_mean or during_mean
METRICS = ("final", "during", "during,final")  # during,final: two objectives, a Pareto front

Report = Callable[[dict[str, Any]], None]
TrainFunction = Callable[..., Any]


@dataclass(frozen=True)
class TrialPlan:
    """What every trial of a sweep shares: the method, the sweep-set flags and the metric."""
    method: str
    base_flags: dict[str, Any] = field(default_factory=dict)
    metric: str = "final"
    sweep_dir: str = ""
    grid: list[dict[str, Any]] = field(default_factory=list)  # --grid: the points a grid sweep runs (hpsearch.grid)

    def config(self, params: dict[str, Any], out_dir: Path | str) -> Config:
        """Fixed flags, then the sampled ones, then the sweep's own (which win)."""
        space = search_spaces.load(self.method)
        sampled = {name: value for name, value in params.items() if name in FIELDS}
        flags = {**space.fixed, **sampled, **self.base_flags, "out_dir": str(out_dir)}
        return check(Config().replace(**flags))


def _mean(values: list[float]) -> float:
    """NaN when there is nothing to average (e.g. during accuracy of a multitask run)."""
    known = [v for v in values if not math.isnan(v)]
    return sum(known) / len(known) if known else math.nan


def _minimum(values: list[float]) -> float:
    known = [v for v in values if not math.isnan(v)]
    return min(known) if known else math.nan


def summarize(during: list[float], final: list[float]) -> dict[str, float]:
    return {"during_mean": _mean(during), "final_mean": _mean(final),
            "min_during_accuracy": _minimum(during), "min_final_accuracy": _minimum(final)}


def task_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """A scalar view of ``train``'s per-task report (task t: during so far, row t so far)."""
    task = int(metrics["task"])
    during = [float(v) for v in metrics["during"]]
    final = [float(v) for v in metrics["accuracy_row"][: task + 1]]
    return {"task": task, "tasks_done": task + 1, **summarize(during, final)}


def result_metrics(result: Any) -> dict[str, Any]:
    """The last report of a run that returned: finished, or pruned by --during_acc_criterion."""
    during, final = [float(v) for v in result.during], [float(v) for v in result.final]
    done = len(during) or len(final)  # a multitask run has no during accuracies
    return {"task": max(done - 1, 0), "tasks_done": done, **summarize(during, final),
            "state": FINISHED if result.finished else PRUNED, "stop_reason": result.stop_reason or "",
            "run_folder": str(result.out_dir), "error": "", "train_seconds": float(result.seconds)}


def ended_result(config: Config) -> Any:
    """The saved Result of a run that already ended in ``config.out_dir`` with these flags, else None.

    A trial that ended just before its sweep's driver died (before Ray's snapshot recorded it) is
    started again on resume: it reports this instead of training again, so a finished result is
    never rerun, never overwritten."""
    from cl_rnn import checkpoint, results

    ended = results.read_ended(Path(config.out_dir))
    if ended is None:
        return None
    try:
        saved = json.loads((Path(config.out_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return None if checkpoint.differences(saved, config) else ended


def failure_metrics(error: BaseException, out_dir: Path | str) -> dict[str, Any]:
    """The last report of a run that raised: -inf everywhere (never NaN: schedulers ignore NaN)."""
    worst = -math.inf
    return {"during_mean": worst, "final_mean": worst, "min_during_accuracy": worst,
            "min_final_accuracy": worst, "state": FAILED, "stop_reason": "",
            "run_folder": str(out_dir), "error": f"{type(error).__name__}: {error}".splitlines()[0]}


def duration(metrics: dict[str, Any], started: float) -> float:
    """Seconds since ``started``, or the run's own training time when longer: a run that continued an
    earlier attempt counts that attempt too, and one that re-reports its saved result (``ended_result``)
    keeps the time it trained instead of the milliseconds it took to read it."""
    return max(time.perf_counter() - started, float(metrics.get("train_seconds") or 0.0))


def cpu_seconds(started: float) -> float:
    """CPU seconds of this process since ``started`` (``time.process_time``): with one torch thread per trial,
    the trial's compute, steady on a shared machine where wall time depends on what else runs.  A trial
    continued from a checkpoint counts its last attempt only."""
    return time.process_time() - started


def metric_names(metric: str) -> list[str]:
    """``"during,final"`` -> ``["during", "final"]``: the mean accuracies a sweep maximises, in order."""
    return metric.split(",")


def objectives(metric: str) -> list[str]:
    """The report keys the searcher maximises: OBJECTIVE for one metric (a scheduler reads it too),
    ``objective_<name>`` for each of two."""
    names = metric_names(metric)
    return [OBJECTIVE] if len(names) == 1 else [f"{OBJECTIVE}_{name}" for name in names]


def with_objective(metrics: dict[str, Any], metric: str) -> dict[str, Any]:
    """Add the objectives, except for a pruned run: without them Optuna records the trial PRUNED."""
    if metrics.get("state") == PRUNED:
        return metrics
    keys = zip(objectives(metric), metric_names(metric))
    return {**metrics, **{key: metrics[f"{name}_mean"] for key, name in keys}}


def run_trial(params: dict[str, Any], plan: TrialPlan, out_dir: Path | str, report: Report,
              train: TrainFunction) -> dict[str, Any]:
    """Train one sampled configuration, reporting after every task but the last, then once more.

    The last task's numbers travel in the final report, which also says how the run ended, so a
    scheduler that stops the trial can never cut off that record.  Every report carries the trial's CPU
    and wall seconds so far (``cpu_seconds``, ``duration``), so a trial a scheduler stops has its cost
    too.  An exception from ``report`` (Ray stopping the trial) propagates; one from training makes the
    trial FAILED.
    """
    torch.set_num_threads(1)  # one CPU per trial: more threads only fight over the cores
    started, cpu_started = time.perf_counter(), time.process_time()

    def on_task(task: int, metrics: dict[str, Any]) -> None:
        if not metrics.get("finished") and task < config.num_tasks - 1:
            report(with_objective({**task_metrics(metrics), "state": RUNNING, "cpu_seconds": cpu_seconds(cpu_started),
                                   "duration": time.perf_counter() - started}, plan.metric))

    try:
        config = plan.config(params, out_dir)
        final = result_metrics(train(config, report=on_task))
    except Exception as error:  # noqa: BLE001 - any training error fails this trial, not the sweep
        final = failure_metrics(error, out_dir)
    final = with_objective({**final, "duration": duration(final, started), "cpu_seconds": cpu_seconds(cpu_started)},
                           plan.metric)
    report(final)
    return final
