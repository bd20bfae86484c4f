"""The sweep's tidy table: one row per trial in ``trials.csv``, rewritten atomically as trials end."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from cl_rnn.config import FIELDS
from cl_rnn.results import write_atomic

RUNNING, FINISHED, PRUNED, FAILED = "running", "finished", "pruned", "failed"  # a trial's state
TRIALS_CSV = "trials.csv"
INFO = ["trial_id", "state", "during_mean", "final_mean", "min_during_accuracy", "min_final_accuracy",
        "tasks_done", "duration", "cpu_seconds", "node", "run_folder", "stop_reason", "error"]
TEXT = ["trial_id", "state", "node", "run_folder", "stop_reason", "error"]


def sampled_flags(config: dict[str, Any]) -> dict[str, Any]:
    """The flags a searcher chose for a trial (its config minus gates and other extras)."""
    return {name: config[name] for name in FIELDS if name in config}


def state_of(last_result: dict[str, Any] | None, errored: bool) -> str:
    """finished/pruned/failed from the last report; a run a scheduler stopped mid-way is pruned."""
    if errored:
        return FAILED
    state = (last_result or {}).get("state", RUNNING)
    return PRUNED if state == RUNNING else state


def trial_row(trial_id: str, config: dict[str, Any], last_result: dict[str, Any] | None, errored: bool,
              error: str, sweep_dir: Path) -> dict[str, Any]:
    """One trials.csv row (a sweep's --flag values are in ``config``: the space pins them)."""
    result = last_result or {}
    row: dict[str, Any] = {name: result.get(name, "") for name in INFO}
    row.update(trial_id=trial_id, state=state_of(result, errored))
    if result.get("state", RUNNING) == RUNNING and not errored:
        row["stop_reason"] = "stopped early by the scheduler"
    if errored:
        row.update({name: -math.inf for name in INFO[2:6]}, error=error or "the trial's worker raised")
    folder = str(result.get("run_folder") or "")
    if folder and Path(folder).is_absolute() and Path(folder).is_relative_to(sweep_dir):
        row["run_folder"] = str(Path(folder).relative_to(sweep_dir))
    sampled = sampled_flags(config)
    return {**row, **sampled}


def read_rows(path: Path) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        return {}
    text = [*TEXT, *(name for name, f in FIELDS.items() if str(f.type) == "str")]
    table = pd.read_csv(path, dtype=dict.fromkeys(text, str))
    table[TEXT] = table[TEXT].fillna("")
    return {row["trial_id"]: row for row in table.to_dict("records")}


def write_rows(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    table = pd.DataFrame(list(rows))
    params = [c for c in table.columns if c not in INFO]
    table = table.reindex(columns=[*INFO, *params])
    write_atomic(path, table.to_csv(index=False))
