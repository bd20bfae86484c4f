"""Runs -> one pandas table, and the study's two ways of picking winners (plus their trade-off).

A sweep folder (``trials.csv`` + run folders) and a plain folder of single runs load alike: one
row per trial with its state (finished, pruned, failed), mean and minimum during and final
accuracy (%), compression ratio, duration, and its hyperparameters (the sampled ones of a sweep,
or the flags that differ between the runs).  Only finished trials are ranked.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from cl_rnn.config import FIELDS, Config
from cl_rnn.rules import CRITERION_STOP
from hpsearch import lock
from hpsearch.records import FAILED, FINISHED, PRUNED, RUNNING, TEXT, TRIALS_CSV, read_rows
from hpsearch.user_files import AnalysisError, not_readable, read_json, read_result, read_table

SELECTIONS = ("final", "during", "pareto")
METRICS = ["during", "final", "min_during", "min_final", "compression_ratio", "seconds"]
INFO = ["trial", "state", *METRICS, "stop_reason", "error", "run_dir"]
# Flags that never change what a run computes, so never count as hyperparameters.
NOT_HYPERPARAMETERS = {"out_dir", "overwrite", "loglevel_info", "show_plots", "use_cuda"}
SEEDS_DIR = "seeds"  # hpsearch seeds writes its reruns here


# --- one run folder -----------------------------------------------------------------------------

def is_run_folder(path: Path) -> bool:
    """A run folder as ``cl_rnn.results`` writes it (Ray's own trial folders have no command.txt)."""
    return (path / "config.json").is_file() and (path / "command.txt").is_file()


def find_run_folders(root: Path) -> list[Path]:
    """Run folders under ``root``, except the seed reruns of ``hpsearch seeds`` (not trials)."""
    found = (p.parent for p in Path(root).rglob("command.txt") if is_run_folder(p.parent))
    return sorted(d for d in found if d.relative_to(root).parts[:1] != (SEEDS_DIR,))


def read_config(run_dir: Path) -> Config:
    """The run's full configuration; unknown keys (e.g. from a newer version) are ignored."""
    data = read_json(Path(run_dir) / "config.json")
    return Config(**{k: v for k, v in data.items() if k in FIELDS})


def read_matrix(run_dir: Path) -> np.ndarray:
    """The accuracy matrix A[t, k] in %, NaN where a row was not reached."""
    path = Path(run_dir) / "accuracy_matrix.csv"
    try:
        return pd.read_csv(path, index_col=0).to_numpy(dtype=float)
    except (OSError, ValueError) as err:
        raise AnalysisError(f"{path}: unreadable accuracy matrix ({err})") from None


def _mean(values: list[float]) -> float:
    finite = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def _min(values: list[float]) -> float:
    finite = [v for v in values if v is not None and not math.isnan(v)]
    return float(np.min(finite)) if finite else math.nan


def _state_of(finished: bool, stop_reason: str | None) -> str:
    if finished:
        return FINISHED
    return PRUNED if (stop_reason or "").startswith(CRITERION_STOP) else FAILED


def read_outcome(run_dir: Path, running: bool = False) -> dict:
    """State and metrics of one run folder, from result.json (missing: a failed or unfinished run);
    ``running``: its sweep's driver lives, so a run that has not ended is running, not failed."""
    path = Path(run_dir) / "result.json"
    if not path.is_file():
        return {"state": RUNNING, "error": ""} if running else {
            "state": FAILED, "error": "no result.json (the run failed or is still running)"}
    data = read_result(path)
    during = [float(v) for v in data.get("during") or []]
    final = [float(v) for v in data.get("final") or []]
    stop_reason = data.get("stop_reason")
    state = _state_of(bool(data.get("finished")), stop_reason)
    state = RUNNING if state == FAILED and not stop_reason and running else state
    return {
        "state": state, "during": _mean(during), "final": _mean(final),
        "min_during": _min(during), "min_final": _min(final),
        "compression_ratio": float(data.get("compression_ratio", math.nan) or math.nan),
        "seconds": float(data.get("seconds", math.nan) or math.nan),
        "stop_reason": stop_reason or "", "error": stop_reason if state == FAILED else "",
    }


# --- a folder of runs or a sweep ----------------------------------------------------------------

def _differing_flags(configs: list[Config]) -> pd.DataFrame:
    frame = pd.DataFrame([{name: getattr(c, name) for name in FIELDS} for c in configs])
    keep = [c for c in frame.columns
            if c not in NOT_HYPERPARAMETERS and frame[c].astype(str).nunique() > 1]
    return frame[keep]


def _table_of_run_folders(root: Path, run_dirs: list[Path], running: bool) -> pd.DataFrame:
    rows = []
    for run_dir in run_dirs:
        name = str(run_dir.relative_to(root)) if run_dir != root else run_dir.name
        rows.append({"trial": name, **read_outcome(run_dir, running), "run_dir": str(run_dir)})
    info = pd.DataFrame(rows).reindex(columns=INFO)
    params = _differing_flags([read_config(d) for d in run_dirs])
    return pd.concat([info, params.reset_index(drop=True)], axis=1)


# trials.csv column names (hpsearch.records) that mean one of ours; the rest are sampled flags.
TRIALS_CSV_NAMES = {"trial_id": "trial", "during_mean": "during", "final_mean": "final",
                    "min_during_accuracy": "min_during", "min_final_accuracy": "min_final",
                    "run_folder": "run_dir", "duration": "seconds"}
TRIALS_CSV_SKIP = ("tasks_done", "cpu_seconds", "node")


def _table_of_trials_csv(root: Path, running: bool) -> pd.DataFrame:
    """trials.csv gives state, error and sampled values; each run folder adds what the csv lacks."""
    rows = []
    for record in _read_trials_csv(root / TRIALS_CSV).values():
        record = {TRIALS_CSV_NAMES.get(k, k): v for k, v in record.items() if k not in TRIALS_CSV_SKIP}
        run_dir = _resolve_run_dir(root, record.get("run_dir"))
        outcome = read_outcome(run_dir, running) if run_dir is not None else {}
        row = {**outcome, **{k: v for k, v in record.items() if not _missing(v)}}
        if run_dir is not None:  # the values the run used (a sweep's --flag wins over a sampled one)
            used = read_config(run_dir)
            row.update({k: getattr(used, k) for k in record if k in FIELDS})
        row["run_dir"] = str(run_dir) if run_dir is not None else ""
        rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        raise AnalysisError(f"{root / TRIALS_CSV}: no trials yet")
    params = [c for c in table.columns if c not in INFO]
    return table.reindex(columns=[*INFO, *params])


TRIALS_CSV_HINT = "delete it to analyze the run folders without it"
STATES = (FINISHED, PRUNED, FAILED, RUNNING)


def _read_trials_csv(path: Path) -> dict[str, dict]:
    """trials.csv's rows by trial id; a broken file (empty, cut short, not a table) is one AnalysisError."""
    rows = read_table(path, "trials table", TRIALS_CSV_HINT, required=TEXT, read=read_rows)
    for trial, row in rows.items():
        if row["state"] not in STATES:
            raise not_readable(path, "trials table", f"trial {trial}: state {row['state']!r} is not one of "
                               f"{', '.join(STATES)}", TRIALS_CSV_HINT)
    return rows


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def _resolve_run_dir(root: Path, value: object) -> Path | None:
    if _missing(value):
        return None
    path = Path(str(value))
    path = path if path.is_absolute() else root / path
    return path if is_run_folder(path) else None


def load_runs(root: str | Path) -> pd.DataFrame:
    """One row per trial of a sweep folder (trials.csv) or of any folder holding run folders."""
    root = Path(root)
    if not root.is_dir():
        raise AnalysisError(f"{root}: no such folder")
    running = lock.holder(root) is not None  # asked once: every run of a sweep has the same driver
    if (root / "trials.csv").is_file():
        table = _table_of_trials_csv(root, running)
    else:
        run_dirs = [root] if is_run_folder(root) else find_run_folders(root)
        if not run_dirs:
            raise AnalysisError(f"{root}: no trials.csv and no run folder (config.json + command.txt) in it")
        table = _table_of_run_folders(root, run_dirs, running)
    for column in METRICS:  # a failed trial's -inf in trials.csv means "no value"
        table[column] = pd.to_numeric(table[column], errors="coerce").replace([np.inf, -np.inf], np.nan)
    return table


def param_columns(table: pd.DataFrame) -> list[str]:
    """The hyperparameter columns of a table from ``load_runs``."""
    return [c for c in table.columns if c not in INFO]


# --- selection ------------------------------------------------------------------------------------

def pareto_front(table: pd.DataFrame) -> pd.DataFrame:
    """Finished trials that no other finished trial beats on both during and final accuracy."""
    finished = table[table["state"] == FINISHED].dropna(subset=["during", "final"])
    during, final = finished["during"].to_numpy(), finished["final"].to_numpy()
    at_least = (during[None, :] >= during[:, None]) & (final[None, :] >= final[:, None])
    better = (during[None, :] > during[:, None]) | (final[None, :] > final[:, None])
    dominated = (at_least & better).any(axis=1)
    return finished[~dominated].sort_values(["final", "during"], ascending=False, kind="mergesort")


def rank(table: pd.DataFrame, by: str = "final", min_during: float | None = None) -> pd.DataFrame:
    """Finished trials, best first by mean ``by`` accuracy, ties broken by the other mean."""
    if by not in SELECTIONS:
        raise AnalysisError(f"--by must be one of {', '.join(SELECTIONS)}, got {by!r}")
    candidates = table[table["state"] == FINISHED]
    if min_during is not None:
        candidates = candidates[candidates["during"] >= min_during]
    if by == "pareto":
        return pareto_front(candidates)
    other = "during" if by == "final" else "final"
    candidates = candidates.dropna(subset=[by])
    return candidates.sort_values([by, other, "trial"], ascending=[False, False, True],
                                  na_position="last", kind="mergesort")


def select(table: pd.DataFrame, by: str = "final", top: int = 1,
           min_during: float | None = None) -> pd.DataFrame:
    """The ``top`` winners (all of the Pareto front when ``top`` is 0 or less)."""
    ranked = rank(table, by, min_during)
    return ranked if top <= 0 else ranked.head(top)


def heading(table: pd.DataFrame, shown: pd.DataFrame, by: str, min_during: float | None = None) -> str:
    """What ``shown`` (from ``select``) is; for the Pareto front, whether --top cut it."""
    if by != "pareto":
        return f"Top {len(shown)} by mean {by} accuracy"
    whole = len(rank(table, "pareto", min_during))
    if whole <= len(shown):
        return "Pareto front"
    return f"Pareto front (the first {len(shown)} of its {whole} trials by final; --top 0 lists all)"


# --- display ---------------------------------------------------------------------------------------

def _format_param(value: object) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def display_table(ranked: pd.DataFrame, params: list[str]) -> pd.DataFrame:
    """Strings for printing: rank, metrics in % with 2 decimals, duration in s, hyperparameters."""
    shown = pd.DataFrame({"#": range(1, len(ranked) + 1), "trial": ranked["trial"].to_numpy()})
    for column in ["during", "final", "min_during", "min_final"]:
        shown[f"{column} %"] = [f"{v:.2f}" if not math.isnan(v) else "" for v in ranked[column]]
    if ranked["compression_ratio"].notna().any():
        shown["compr."] = [f"{v:.3g}" if not math.isnan(v) else "" for v in ranked["compression_ratio"]]
    shown["seconds"] = [f"{v:.1f}" if not math.isnan(v) else "" for v in ranked["seconds"]]
    for name in params:
        shown[name] = [_format_param(v) for v in ranked[name]]
    return shown


def format_ranking(ranked: pd.DataFrame, params: list[str]) -> str:
    if ranked.empty:
        return "(no finished trial)"
    return display_table(ranked, params).to_string(index=False)


def state_counts(table: pd.DataFrame) -> str:
    counts = table["state"].value_counts()
    shown = (FINISHED, PRUNED, FAILED, RUNNING) if counts.get(RUNNING) else (FINISHED, PRUNED, FAILED)
    return ", ".join(f"{counts.get(s, 0)} {s}" for s in shown)
