"""Stand-ins for cl_rnn.train.train that honour its contract in milliseconds.

Importable by Ray workers: the tests put this folder on PYTHONPATH before Ray starts.
Accuracies are a deterministic function of lr, so the searcher has something to optimise.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from cl_rnn.config import Config, command_line
from cl_rnn.results import Result
from cl_rnn.rules import during_criteria

# Tiny real runs: 2 tasks of the tiny surrogate (240 training clips each), a few iterations.
TINY = {"num_tasks": 2, "val_set_size": 50, "val_iter": 10}
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for an ``hpsearch`` child process: quiet, the repository and these fakes importable."""
    path = os.pathsep.join(filter(None, [str(HERE), str(REPO), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "RAY_USAGE_STATS_ENABLED": "0", **extra}


class TrainingDiverged(RuntimeError):
    pass


def accuracy(config: Config, task: int) -> float:
    """Best near lr=1e-3; later tasks a little lower."""
    return 80.0 - 8.0 * abs(math.log10(config.lr) + 3.0) - task


def _write_run(config: Config, out_dir: Path, during: list[float], final: list[float], finished: bool,
               stop_reason: str | None) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.json").write_text(json.dumps(dataclasses.asdict(config)))
    (out_dir / "command.txt").write_text(command_line(config) + "\n")
    (out_dir / "result.json").write_text(json.dumps(
        {"finished": finished, "stop_reason": stop_reason, "during": during, "final": final, "seconds": 0.0,
         "compression_ratio": 1.0, "method": "fake", "seed": config.random_seed}))


def train(config: Config, report: Any = None, tasks: Any = None, forgetting: float = 2.0) -> Result:
    """Task k loses ``forgetting`` points for each later task trained."""
    seconds_per_task = float(os.environ.get("FAKE_SECONDS_PER_TASK", "0.01"))
    criteria = during_criteria(config)
    out_dir = Path(config.out_dir)
    matrix = np.full((config.num_tasks, config.num_tasks), np.nan)
    during: list[float] = []
    stop_reason = None
    for t in range(config.num_tasks):
        time.sleep(seconds_per_task)
        during.append(accuracy(config, t))
        matrix[t, : t + 1] = [accuracy(config, k) - forgetting * (t - k) for k in range(t + 1)]
        if report is not None:
            report(t, {"task": t, "accuracy_row": [float(v) for v in matrix[t]], "during": list(during),
                       "during_mean": float(np.mean(during)), "final_mean": float(np.nanmean(matrix[t, : t + 1])),
                       "finished": t == config.num_tasks - 1})
        if t < config.num_tasks - 1 and criteria[t] != -1 and during[t] < criteria[t]:
            stop_reason = f"during_acc_criterion: task {t} at {during[t]:.1f} below {criteria[t]}"
            break
    last = len(during) - 1
    final = [float(v) for v in matrix[last, : last + 1]]
    _write_run(config, out_dir, during, final, stop_reason is None, stop_reason)
    return Result(matrix, during, final, stop_reason is None, stop_reason, out_dir)


def train_failing(config: Config, report: Any = None, tasks: Any = None, forgetting: float = 2.0) -> Result:
    """Diverges (like a NaN loss) whenever lr > 1e-3; otherwise as ``train``."""
    if config.lr > 1e-3:
        raise TrainingDiverged(f"loss is nan at task 0, iteration 3 (lr={config.lr:.3g})")
    return train(config, report, tasks, forgetting)


def train_tradeoff(config: Config, report: Any = None, tasks: Any = None) -> Result:
    """As ``train_failing``, but a larger lr also forgets more: up to lr=1e-3 mean during accuracy rises
    with lr and mean final accuracy falls, so the finished trials form a Pareto front of several."""
    return train_failing(config, report, tasks, forgetting=2.0 + 10.0 * max(0.0, math.log10(config.lr) + 5.0))


def real_train_failing(config: Config, report: Any = None, tasks: Any = None) -> Any:
    """cl_rnn.train.train, except that it diverges whenever lr > 1e-3."""
    from cl_rnn.train import TrainingDiverged as Diverged, train as real_train

    if config.lr > 1e-3:
        raise Diverged(f"loss is nan at task 0, iteration 3 (lr={config.lr:.3g})")
    return real_train(config, report, tasks)


def train_crashing_once(config: Config, report: Any = None, tasks: Any = None) -> Result:
    """The sweep's first call kills its whole worker process (as an out-of-memory kill would)."""
    marker = Path(config.out_dir).parents[1] / "crashed"  # in the sweep folder
    if not marker.exists():
        marker.write_text("crashed")
        os._exit(3)
    return train(config, report, tasks)
