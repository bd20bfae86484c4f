"""What a sweep prints: a live count, one line per ended trial, and the best trial at the end."""
from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from cl_rnn.config import command_line
from hpsearch.records import FAILED, FINISHED, INFO, PRUNED
from hpsearch.trial import metric_names


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return str(value)


def _accuracy(value: Any) -> str:
    return f"{value:5.1f}" if isinstance(value, (int, float)) and math.isfinite(value) else "    -"


def params_text(row: dict[str, Any]) -> str:
    return " ".join(f"{name}={_value(value)}" for name, value in row.items() if name not in INFO)


def counts_text(rows: Iterable[dict[str, Any]], total: int, running: int) -> str:
    counts = Counter(row["state"] for row in rows)
    ended = sum(counts[s] for s in (FINISHED, PRUNED, FAILED))
    return (f"{ended}/{total} ended ({counts[FINISHED]} finished, {counts[PRUNED]} pruned, "
            f"{counts[FAILED]} failed), {running} running")


def trial_line(row: dict[str, Any], ended: int, total: int) -> str:
    why = f"  [{row['error'] or row['stop_reason']}]" if row["state"] != FINISHED else ""
    return (f"[{ended:>{len(str(total))}}/{total}] {row['state']:<8} {row['trial_id']}  "
            f"during {_accuracy(row['during_mean'])}  final {_accuracy(row['final_mean'])}  "
            f"{_value(float(row['duration'] or 0.0))}s  {params_text(row)}{why}")


def fault_line(trial_id: str, error: str, failures: int, retries: int) -> str:
    """A trial whose attempt died under Ray (its worker process killed, say): the cause and what comes next,
    in one line instead of Ray's traceback."""
    cause = error.split(". ")[0] or "its worker raised"
    then = (f"retrying from its last finished task (retry {failures} of {retries})" if failures <= retries
            else f"recorded failed after {failures} attempts")
    return f"hpsearch run: trial {trial_id}: {cause}; {then}"


def best_row(rows: Iterable[dict[str, Any]], metric: str) -> dict[str, Any] | None:
    """The best finished trial by mean final (or during) accuracy."""
    finished = [r for r in rows if r["state"] == FINISHED and math.isfinite(float(r[f"{metric}_mean"]))]
    return max(finished, key=lambda r: float(r[f"{metric}_mean"]), default=None)


def rerun_line(run_dir: Path) -> str:
    """The run's command line as ``hpsearch export`` writes it: without the trial's run folder."""
    from hpsearch.analyze import read_config
    from hpsearch.export import reproducible

    return command_line(reproducible(read_config(run_dir)))


def front_text(rows: list[dict[str, Any]], sweep_dir: Path) -> str:
    """The finished trials no other beats on both during and final accuracy (``analyze --by pareto``)."""
    import pandas as pd

    from hpsearch.analyze import TRIALS_CSV_NAMES, pareto_front

    front = pareto_front(pd.DataFrame(rows).rename(columns=TRIALS_CSV_NAMES))
    return (f"  Pareto front (during, final): {' '.join(map(str, front['trial']))}; "
            f"hpsearch analyze {sweep_dir} --by pareto")


def best_text(rows: list[dict[str, Any]], metric: str, sweep_dir: Path) -> str:
    """The best trial by ``metric``; for ``during,final`` the best by final (as ``analyze`` ranks by
    default) and the Pareto front."""
    names = metric_names(metric)
    best = best_row(rows, names[-1])
    if best is None:
        return f"no trial finished; see {sweep_dir / 'trials.csv'}"
    run_dir = sweep_dir / str(best["run_folder"])
    lines = [f"best trial by {names[-1]} accuracy: {best['trial_id']}  during {_accuracy(best['during_mean'])}"
             f"  final {_accuracy(best['final_mean'])}",
             f"  hyperparameters: {params_text(best)}",
             f"  run folder: {run_dir}"]
    if (run_dir / "config.json").is_file():
        lines.append(f"  command: {rerun_line(run_dir)}")
    if len(names) > 1:
        lines.append(front_text(rows, sweep_dir))
    lines.append(f"  all trials: {sweep_dir / 'trials.csv'}   "
                 f"dashboard: optuna-dashboard {sweep_dir / 'optuna.journal'}")
    return "\n".join(lines)
