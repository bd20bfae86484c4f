"""Constructed run folders and sweeps (the layout of cl_rnn.results) for the analysis tests."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd

from cl_rnn.config import Config, command_line


def matrix_with(during: list[float], final: list[float]) -> np.ndarray:
    """A lower-triangular accuracy matrix whose diagonal is ``during`` and last row ``final``."""
    n = len(during)
    matrix = np.full((n, n), np.nan)
    for t in range(n):
        matrix[t, : t + 1] = np.linspace(during[t] - 5, during[t], t + 1)
        matrix[t, t] = during[t]
    if len(final) == n:
        matrix[n - 1] = final
    return matrix


def write_run(run_dir: Path, config: Config, during: list[float], final: list[float],
              finished: bool = True, stop_reason: str | None = None, seconds: float = 3.0,
              compression_ratio: float = 1.0) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    config = config.replace(out_dir=str(run_dir))
    (run_dir / "config.json").write_text(json.dumps(dataclasses.asdict(config)))
    (run_dir / "command.txt").write_text(command_line(config) + "\n")
    result = {"finished": finished, "stop_reason": stop_reason, "during": during, "final": final,
              "seconds": seconds, "compression_ratio": compression_ratio, "method": "finetune",
              "seed": config.random_seed}
    (run_dir / "result.json").write_text(json.dumps(result))
    np.savetxt(run_dir / "accuracy_matrix.csv", matrix_with(during, final), delimiter=",", fmt="%.4f")
    return run_dir


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
    """A sweep: trials.csv (state, error, sampled params) and run folders; F has no run folder."""
    rows = []
    for name, (state, lr, batch, during, final) in TRIALS.items():
        run_dir = ""
        if state != "failed":
            run_dir = str(write_run(root / "runs" / f"trial_{name}", trial_config(lr, batch), during,
                                    final, finished=state == "finished",
                                    stop_reason=None if state == "finished" else "pruned by ASHA"))
        rows.append({"trial_id": name, "state": state, "lr": lr, "batch_size": batch,
                     "during_mean": float(np.mean(during)), "final_mean": float(np.mean(final)),
                     "run_dir": run_dir, "error": "ValueError: boom" if state == "failed" else ""})
    pd.DataFrame(rows).to_csv(root / "trials.csv", index=False)
    return root
