"""``hpsearch report``: the plots of a sweep and a Markdown summary (SWEEP/report.md)."""
from __future__ import annotations

import math
import warnings
from pathlib import Path

import pandas as pd

from hpsearch import plots
from hpsearch.analyze import (FAILED, AnalysisError, display_table, load_runs, param_columns,
                              pareto_front, rank, read_matrix, state_counts)
from hpsearch.export import export_text
from hpsearch.seeds import SEEDS_CSV, statistics
from hpsearch.user_files import COPY_HINT, absolute, read_result, read_table, write_output, writing

PLOTS_DIR = "plots"
JOURNAL_PATTERN = "*.journal"


def load_study(sweep: Path):
    """The sweep's Optuna study from its journal file, or None when there is none."""
    journals = sorted(Path(sweep).glob(JOURNAL_PATTERN))
    if not journals:
        return None
    import optuna
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.JournalStorage(JournalFileBackend(str(journals[0])))
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    return optuna.load_study(study_name=names[0], storage=storage) if names else None


def _objective(study, by: str) -> int | None:
    """Which value of a multi-objective study's trials importances are of: the metric ranked ``by``, else
    the last (final, for ``--by pareto``); None for one objective."""
    if len(study.directions) == 1:
        return None
    names = study.metric_names or []
    return names.index(by) if by in names else len(study.directions) - 1


def param_importances(sweep: Path, by: str = "final") -> tuple[dict[str, float], str]:
    """Optuna's importances of the sampled hyperparameters and over how many trials, or an empty
    dict and why not."""
    try:
        study = load_study(sweep)
    except (OSError, ValueError, RuntimeError) as err:  # a damaged journal costs the importances, not the report
        return {}, f"the Optuna journal is unreadable ({' '.join(str(err).split())})"
    if study is None:
        return {}, "no Optuna journal in the sweep folder"
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    names = {name for trial in complete for name in trial.params}
    if len(complete) < 2 or len(names) < 2:
        return {}, (f"needs at least 2 finished trials and 2 sampled hyperparameters "
                    f"(the study has {len(complete)} and {len(names)})")
    note = f"{len(complete)} finished trials"
    index = _objective(study, by)
    # Negated: with a target, Optuna's default evaluator (PED-ANOVA) looks at the lowest values.
    target = None if index is None else (lambda t: -t.values[index])
    if index is not None:
        note += f", objective {study.metric_names[index] if study.metric_names else index}"
    try:
        with warnings.catch_warnings():  # its warning that a target is minimised: negated above
            warnings.filterwarnings("ignore", message="PedAnovaImportanceEvaluator computes")
            values = optuna.importance.get_param_importances(study, target=target)
    except (RuntimeError, ValueError) as err:
        return {}, f"Optuna could not compute importances ({err})"
    return dict(values), note


def markdown_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return "(none)\n"
    cells = frame.astype(str).map(lambda s: s.replace("|", "\\|"))
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in cells.to_numpy().tolist()]
    return "\n".join(lines) + "\n"


def _winner_plots(winner: pd.Series, out: Path, by: str) -> list[tuple[str, str]]:
    run_dir = Path(winner["run_dir"])
    label = f"best by {by}: trial {winner['trial']}"
    made = []
    try:
        matrix_png = plots.accuracy_matrix(read_matrix(run_dir), out / "winner_accuracy_matrix.png",
                                           f"Accuracy matrix, {label}")
        made.append(("Winner's accuracy matrix", matrix_png.name))
    except AnalysisError:
        pass
    result = read_result(run_dir / "result.json")
    bars_png = plots.per_task_accuracy([float(v) for v in result.get("during") or []],
                                       [float(v) for v in result.get("final") or []],
                                       out / "winner_per_task.png", f"Accuracy per task, {label}")
    made.append(("Winner's during and final accuracy per task", bars_png.name))
    return made


def make_plots(sweep: Path, table: pd.DataFrame, ranked: pd.DataFrame, by: str) -> tuple[list, str]:
    """All figures; returns (caption, file name) pairs and the note on importances."""
    out = Path(sweep) / PLOTS_DIR
    made = _winner_plots(ranked.iloc[0], out, by) if not ranked.empty and ranked.iloc[0]["run_dir"] else []
    winner = ranked.iloc[0]["trial"] if not ranked.empty else None
    scatter = plots.during_vs_final(table, pareto_front(table), out / "during_vs_final.png",
                                    f"During vs final accuracy, {Path(sweep).name}", winner)
    made.append(("During vs final accuracy of all trials, Pareto front marked", scatter.name))
    values, note = param_importances(sweep, by)
    if values:
        png = plots.importances(values, out / "param_importances.png",
                                f"Hyperparameter importances, {Path(sweep).name} ({note})")
        made.append(("Optuna hyperparameter importances", png.name))
        note = ""
    return made, note


def _mean_text(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f} %"


def seeds_section(sweep: Path) -> list[str]:
    """Mean +- SEM over the seed reruns of ``hpsearch seeds``, when it has run."""
    path = Path(sweep) / SEEDS_CSV
    if not path.is_file():
        return []
    stats = read_table(path, "seeds table", "delete it or run hpsearch seeds again",
                       required=("trial", "state", "during", "final"),
                       read=lambda p: statistics(pd.read_csv(p, dtype={"trial": str})))
    shown = pd.DataFrame({"trial": stats["trial"], "finished / runs": [
        f"{f} / {r}" for f, r in zip(stats["finished"], stats["runs"])]})
    for metric in ("during", "final"):
        shown[f"{metric} % (mean ± SEM)"] = [f"{m:.2f} ± {e:.2f}" for m, e in
                                            zip(stats[f"{metric}_mean"], stats[f"{metric}_sem"])]
        shown[f"{metric} std"] = [f"{v:.2f}" for v in stats[f"{metric}_std"]]
        shown[f"{metric} min %"] = [f"{v:.2f}" for v in stats[f"{metric}_min"]]
    return ["## Winners over seeds (hpsearch seeds; std ddof 0, SEM = std / sqrt(n))", "",
            markdown_table(shown)]


def render(sweep: Path, table: pd.DataFrame, by: str, top: int, figures: list, note: str) -> str:
    params = param_columns(table)
    ranked = rank(table, by)
    lines = [f"# Sweep report: {Path(sweep).name}", "",
             f"Trials: {len(table)} ({state_counts(table)}). Ranked by mean **{by}** accuracy "
             "among finished trials; pruned and failed trials never win.", "",
             f"## Top {top} by {by}", "", markdown_table(display_table(ranked.head(top), params)),
             "## Pareto front (no trial beats these on both during and final)", "",
             markdown_table(display_table(pareto_front(table), params)),
             "## Winners as command lines", "", "```console",
             export_text(ranked.head(top)).rstrip("\n") or "(no finished trial)", "```", "",
             *seeds_section(sweep), "## Plots", ""]
    lines += [f"### {caption}\n\n[![{caption}]({PLOTS_DIR}/{name})]({PLOTS_DIR}/{name})\n"
              for caption, name in figures]
    if note:
        lines += [f"Hyperparameter importances skipped: {note}.", ""]
    failed = table[table["state"] == FAILED]
    if not failed.empty:
        lines += ["## Failed trials", ""]
        lines += [f"- trial {row.trial}: {row.error}" for row in failed.itertuples()]
        lines.append("")
    if not ranked.empty:
        best = ranked.iloc[0]
        lines += [f"Best by {by}: trial {best['trial']}, during {_mean_text(best['during'])}, "
                  f"final {_mean_text(best['final'])}, run folder `{best['run_dir']}`.", ""]
    return "\n".join(lines)


def write_report(sweep: str | Path, by: str = "final", top: int = 5) -> Path:
    """Plots under SWEEP/plots/ and SWEEP/report.md; returns the path of the Markdown file."""
    sweep = Path(absolute(str(sweep)))
    table = load_runs(sweep)
    with writing(sweep / PLOTS_DIR, COPY_HINT):
        figures, note = make_plots(sweep, table, rank(table, by), by)
    path = sweep / "report.md"
    write_output(path, render(sweep, table, by, top, figures, note), COPY_HINT)
    return path
