"""`hpsearch run --metric during,final`: a two-objective Optuna study and its Pareto front in the journal,
`hpsearch analyze --by pareto` and `hpsearch report`."""
from __future__ import annotations

import optuna

import hpsearch_fakes
from hpsearch import cli, journal, sweep
from hpsearch.settings import SweepSettings
from hpsearch.trial import FAILED, FINISHED, PRUNED

STATES = {FINISHED: "COMPLETE", PRUNED: "PRUNED", FAILED: "FAIL"}


def non_dominated(rows: list[dict]) -> set[str]:
    """The finished trials that no other finished trial beats on both mean during and mean final accuracy."""
    points = {row["trial_id"]: (row["during_mean"], row["final_mean"]) for row in rows if row["state"] == FINISHED}
    return {tid for tid, (d, f) in points.items()
            if not any(d2 >= d and f2 >= f and (d2, f2) != (d, f) for d2, f2 in points.values())}


def listed_trials(out: str) -> list[str]:
    """The trial column of the table `hpsearch analyze` prints under its heading."""
    table = out.split("Pareto front:\n", 1)[1].splitlines()
    return [line.split()[1] for line in table[1:] if line.strip()]


def test_a_two_objective_sweep_records_and_shows_its_pareto_front(tmp_path, ray_local, capsys):
    settings = SweepSettings(method="finetune", num_samples=8, n_iter=5, name="front", results=str(tmp_path),
                             metric="during,final", flags={"num_tasks": 3, "during_acc_criterion": "70"})
    rows = sweep.run(settings, train=hpsearch_fakes.train_tradeoff)
    sweep_dir = tmp_path / "front"
    assert len(rows) == 8 and {row["state"] for row in rows} == {FINISHED, PRUNED, FAILED}
    front = non_dominated(rows)
    assert len(front) >= 2  # a real trade-off, not one best trial
    assert "Pareto front (during, final): " in capsys.readouterr().out

    study = journal.open_study(sweep_dir / journal.JOURNAL, "front")
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE] * 2
    assert study.metric_names == ["during", "final"]
    by_id = {row["trial_id"]: row for row in rows}
    for trial in study.trials:
        row = by_id[trial.user_attrs[journal.RAY_ID]]
        assert trial.state.name == STATES[row["state"]]
        assert trial.values == ([row["during_mean"], row["final_mean"]] if row["state"] == FINISHED else None)
    assert {t.user_attrs[journal.RAY_ID] for t in study.best_trials} == front  # Optuna's own front agrees

    assert cli.main(["analyze", str(sweep_dir), "--by", "pareto"]) == 0
    listed = listed_trials(capsys.readouterr().out)
    assert sorted(listed) == sorted(front)

    assert cli.main(["report", str(sweep_dir), "--by", "pareto"]) == 0
    report = (sweep_dir / "report.md").read_text()
    section = report.split("## Pareto front", 1)[1].split("\n## ", 1)[0]
    assert {tid for tid in by_id if f"| {tid} |" in section} == front
    assert "Pareto front marked" in report and (sweep_dir / "plots" / "during_vs_final.png").is_file()


def test_asha_with_two_objectives_is_refused_in_one_line(tmp_path, capsys):
    argv = ["run", "--method", "finetune", "--metric", "during,final", "--scheduler", "asha",
            "--results", str(tmp_path), "--name", "x"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("hpsearch run: --scheduler asha stops trials by one objective") and err.count("\n") == 1
    assert not (tmp_path / "x").exists()
