"""``hpsearch seeds``: rerun the winners over random seeds and report mean and spread.

As the study does: the winner's own seed plus seeds 0, 1, ... (N runs in all), with
``during_acc_criterion`` forced off; statistics over the finished reruns, standard deviation with
ddof 0 and SEM = std / sqrt(n).  Unlike the study, a seed is never run twice: when the winner's
own seed is one of 0..N-2, the next unused seed takes its place.

Each rerun writes a run folder SWEEP/seeds/<trial>/seed_<s>; a rerun that already finished is not
run again (failed and unfinished ones are), so an interrupted ``hpsearch seeds`` continues where it
stopped.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from cl_rnn.config import Config
from hpsearch.analyze import FAILED, FINISHED, SEEDS_DIR, AnalysisError, read_outcome, select
from hpsearch.export import winner_config
from hpsearch.user_files import COPY_HINT, absolute, write_output, writing

SEEDS_CSV = "seeds.csv"
# runs the configs (each writes its own out_dir); returns an error text per config that raised
Runner = Callable[[list[Config]], list[str]]


def seeds_for(original: int, num_seeds: int) -> list[int]:
    """The original seed first, then the smallest non-negative seeds not yet taken."""
    if num_seeds < 1:
        raise AnalysisError(f"--num-seeds must be at least 1, got {num_seeds}")
    seeds = [original]
    candidate = 0
    while len(seeds) < num_seeds:
        if candidate not in seeds:
            seeds.append(candidate)
        candidate += 1
    return seeds


def rerun_dir(sweep: Path, trial: str, seed: int) -> Path:
    return Path(sweep) / SEEDS_DIR / str(trial).replace("/", "_") / f"seed_{seed}"


def rerun_configs(sweep: Path, winners: pd.DataFrame, num_seeds: int) -> list[tuple[str, Config]]:
    """(trial, config) of every rerun, criterion off, each in its own run folder."""
    jobs = []
    for _, row in winners.iterrows():
        config = winner_config(row)
        for seed in seeds_for(config.random_seed, num_seeds):
            out_dir = rerun_dir(sweep, row["trial"], seed)
            jobs.append((row["trial"], config.replace(random_seed=seed, during_acc_criterion="-1",
                                                      out_dir=str(out_dir), overwrite=True)))
    return jobs


def _finished(config: Config) -> bool:
    return read_outcome(Path(config.out_dir))["state"] == FINISHED


def seeds_table(jobs: list[tuple[str, Config]], errors: dict[str, str]) -> pd.DataFrame:
    """One row per rerun, read back from its run folder."""
    rows = []
    for trial, config in jobs:
        outcome = read_outcome(Path(config.out_dir))
        if config.out_dir in errors:
            outcome = {**outcome, "state": "failed", "error": errors[config.out_dir]}
        rows.append({"trial": trial, "seed": config.random_seed, **outcome, "run_dir": config.out_dir})
    columns = ["trial", "seed", "state", "during", "final", "min_during", "min_final", "seconds",
               "error", "run_dir"]
    return pd.DataFrame(rows).reindex(columns=columns)


STATISTICS = ["trial", "runs", "finished",
              *(f"{m}_{s}" for m in ("during", "final") for s in ("mean", "std", "sem", "min"))]


def statistics(table: pd.DataFrame) -> pd.DataFrame:
    """Per winner, over its finished reruns: n, mean, std (ddof 0), SEM and min of during and final
    (the columns are there when no rerun is: a seeds.csv of its header alone)."""
    rows = []
    for trial, group in table.groupby("trial", sort=False):
        finished = group[group["state"] == FINISHED]
        row: dict[str, object] = {"trial": trial, "runs": len(group), "finished": len(finished)}
        for metric in ("during", "final"):
            values = finished[metric].dropna().to_numpy(dtype=float)
            std = float(np.std(values, ddof=0)) if len(values) else math.nan
            row.update({f"{metric}_mean": float(np.mean(values)) if len(values) else math.nan,
                        f"{metric}_std": std,
                        f"{metric}_sem": std / math.sqrt(len(values)) if len(values) else math.nan,
                        f"{metric}_min": float(np.min(values)) if len(values) else math.nan})
        rows.append(row)
    return pd.DataFrame(rows, columns=STATISTICS)


def format_statistics(stats: pd.DataFrame) -> str:
    lines = []
    for row in stats.itertuples(index=False):
        lines.append(f"trial {row.trial}: {row.finished} of {row.runs} reruns finished")
        for metric in ("during", "final"):
            mean, std, sem, low = (getattr(row, f"{metric}_{s}") for s in ("mean", "std", "sem", "min"))
            lines.append(f"  {metric:6s} accuracy: mean {mean:.2f} %, std {std:.2f}, SEM {sem:.2f}, "
                         f"min {low:.2f} %")
    return "\n".join(lines)


def all_failed(rows: pd.DataFrame) -> str | None:
    """The line to end with when no rerun has a result (a broken setup, as ``hpsearch run`` says)."""
    if rows.empty or (rows["state"] != FAILED).any():
        return None
    return f"all {len(rows)} reruns failed; the first: {rows['error'].iloc[0] or 'no message'}"


def run_seeds(sweep: str | Path, table: pd.DataFrame, runner: Runner, by: str = "final",
              top: int = 1, num_seeds: int = 10,
              min_during: float | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rerun the winners (skipping reruns already done), write SWEEP/seeds.csv, return it and
    the statistics.  The reruns' folders are absolute: a Ray trial runs in a folder of its own."""
    sweep = Path(absolute(str(sweep)))
    winners = select(table, by, top, min_during)
    if winners.empty:
        raise AnalysisError(f"{sweep}: no finished trial to rerun")
    jobs = rerun_configs(sweep, winners, num_seeds)
    with writing(sweep / SEEDS_DIR, COPY_HINT):
        (sweep / SEEDS_DIR).mkdir(parents=True, exist_ok=True)
    todo = [config for _, config in jobs if not _finished(config)]
    errors = runner(todo) if todo else []
    failed = {config.out_dir: error for config, error in zip(todo, errors) if error}
    rows = seeds_table(jobs, failed)
    write_output(sweep / SEEDS_CSV, rows.to_csv(index=False), COPY_HINT)
    return rows, statistics(rows)
