"""Constructed run folders and sweeps (the layout of cl_rnn.results) for the analysis tests."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from cl_rnn.config import Config
from cl_rnn.metrics import overview
from cl_rnn.results import Result, RunFolder
from hpsearch.records import TRIALS_CSV, write_rows


def matrix_with(during: list[float], final: list[float], num_tasks: int) -> np.ndarray:
    """An accuracy matrix whose diagonal is ``during`` and whose last reached row is ``final``."""
    matrix = np.full((num_tasks, num_tasks), np.nan)
    for t, value in enumerate(during):
        matrix[t, : t + 1] = np.linspace(value - 5, value, t + 1)
    matrix[len(during) - 1, : len(final)] = final
    return matrix


def write_run(run_dir: Path, config: Config, during: list[float], final: list[float],
              finished: bool = True, stop_reason: str | None = None, seconds: float = 3.0,
              compression_ratio: float = 1.0) -> Path:
    """A run folder written by cl_rnn.results itself, with constructed accuracies."""
    config = config.replace(out_dir=str(run_dir), overwrite=True)
    folder = RunFolder(config)
    matrix = matrix_with(during, final, config.num_tasks)
    summary = overview(matrix, multitask=False, compression_ratio=compression_ratio,
                       rnn_arch=config.rnn_arch, hnet_arch=config.nh_hmlp_arch,
                       num_train_iter=config.n_iter, finished=finished)
    folder.write(Result(matrix, list(during), list(final), finished, stop_reason, folder.path, summary,
                        compression_ratio, seconds), config.random_seed)
    return folder.path


BASE = Config(multi_head=True, num_tasks=3, n_iter=30)

# name -> (state, lr, batch_size, during per task, final per task)
# best by final: B (70, tie with G broken by during); best by during: A (80); Pareto: A, C, B;
# the pruned and failed trials have higher numbers than any finished one and must never win.
TRIALS = {
    "A": ("finished", 1e-3, 64, [80, 80, 80], [50, 50, 50]),
    "B": ("finished", 1e-4, 32, [60, 60, 60], [70, 70, 70]),
    "C": ("finished", 3e-4, 64, [70, 70, 70], [60, 60, 60]),
    "D": ("finished", 2e-4, 128, [65, 65, 65], [55, 55, 55]),
    "G": ("finished", 5e-5, 128, [55, 55, 55], [70, 70, 70]),
    "P": ("pruned", 1e-2, 32, [99, 20], [98, 20]),
    "F": ("failed", 1e-1, 32, [100], [100]),
}


def trial_config(lr: float, batch_size: int, seed: int = 42) -> Config:
    return BASE.replace(lr=lr, batch_size=batch_size, random_seed=seed)


def build_runs_folder(root: Path) -> Path:
    """A folder of single runs: no trials.csv, states from result.json."""
    for name, (state, lr, batch, during, final) in TRIALS.items():
        stop = {"finished": None, "pruned": "during_acc_criterion: task 1 below 50",
                "failed": "TrainingDiverged: loss is nan"}[state]
        write_run(root / f"run_{name}", trial_config(lr, batch), during, final,
                  finished=state == "finished", stop_reason=stop)
    return root


def build_sweep_folder(root: Path) -> Path:
    """A sweep as hpsearch run leaves it: trials.csv (written by hpsearch.records, run folders
    relative to the sweep, -inf for a failed trial) and run folders; F failed without one."""
    rows = []
    for name, (state, lr, batch, during, final) in TRIALS.items():
        row = {"trial_id": name, "state": state, "lr": lr, "batch_size": batch,
               "during_mean": float(np.mean(during)), "final_mean": float(np.mean(final)),
               "duration": 4.0, "run_folder": "", "stop_reason": "", "error": ""}
        if state == "failed":
            row.update(during_mean=-math.inf, final_mean=-math.inf, error="ValueError: boom")
        else:
            write_run(root / f"trial_{name}" / "run", trial_config(lr, batch), during, final,
                      finished=state == "finished")
            row["run_folder"] = f"trial_{name}/run"
        if state == "pruned":
            row["stop_reason"] = "stopped early by the scheduler"
        rows.append(row)
    write_rows(root / TRIALS_CSV, rows)
    return root
