"""Loading runs and sweeps into one table; selection by final, during and the Pareto front."""
from __future__ import annotations

import math

import pandas as pd
import pytest

from hpsearch.analyze import (AnalysisError, format_ranking, load_runs, param_columns, pareto_front,
                              rank, select)


@pytest.fixture(params=["runs_folder", "sweep_folder"])
def table(request):
    return load_runs(request.getfixturevalue(request.param))


def test_one_row_per_trial_with_states_means_and_minimums(table):
    assert sorted(table["trial"].str[-1]) == sorted("ABCDGPF")
    states = dict(zip(table["trial"].str[-1], table["state"]))
    assert states == {"A": "finished", "B": "finished", "C": "finished", "D": "finished",
                      "G": "finished", "P": "pruned", "F": "failed"}
    row_p = table[table["trial"].str.endswith("P")].iloc[0]
    assert row_p["during"] == pytest.approx(59.5) and row_p["min_final"] == 20
    assert set(param_columns(table)) == {"lr", "batch_size"}


def test_best_final_and_best_during_are_different_trials(table):
    assert select(table, "final")["trial"].iloc[0].endswith("B")
    assert select(table, "during")["trial"].iloc[0].endswith("A")


def test_tie_on_final_is_broken_by_during(table):
    order = [t[-1] for t in rank(table, "final")["trial"]]
    assert order == ["B", "G", "C", "D", "A"]


def test_pruned_and_failed_never_win_and_are_never_ranked(table):
    for by in ("final", "during", "pareto"):
        assert set(rank(table, by)["state"]) == {"finished"}


def test_pareto_front_is_the_undominated_trials(table):
    assert [t[-1] for t in pareto_front(table)["trial"]] == ["B", "C", "A"]
    assert [t[-1] for t in select(table, "pareto", top=0)["trial"]] == ["B", "C", "A"]


def test_analyze_says_when_top_cuts_the_pareto_front(runs_folder, capsys):
    from hpsearch import cli

    assert cli.main(["analyze", str(runs_folder), "--by", "pareto", "--top", "2"]) == 0
    assert "Pareto front (the first 2 of its 3 trials by final; --top 0 lists all):" in capsys.readouterr().out
    assert cli.main(["analyze", str(runs_folder), "--by", "pareto", "--top", "0"]) == 0
    assert "Pareto front:" in capsys.readouterr().out


def test_min_during_filters_before_ranking(table):
    assert select(table, "final", min_during=68)["trial"].iloc[0].endswith("C")
    assert rank(table, "final", min_during=100).empty


def test_top_k_and_the_printed_table(table):
    top = select(table, "final", top=3)
    assert len(top) == 3
    text = format_ranking(top, param_columns(table))
    assert "final %" in text and "70.00" in text and "lr" in text and "0.0001" in text


def test_failed_trial_of_a_sweep_keeps_its_error_from_trials_csv(sweep_folder):
    table = load_runs(sweep_folder)
    failed = table[table["state"] == "failed"].iloc[0]
    assert failed["error"] == "ValueError: boom" and failed["run_dir"] == ""
    assert math.isnan(failed["final"])  # -inf in trials.csv: no value


def test_bad_input_is_one_clear_error(tmp_path):
    with pytest.raises(AnalysisError, match="no such folder"):
        load_runs(tmp_path / "nope")
    with pytest.raises(AnalysisError, match="no trials.csv and no run folder"):
        load_runs(tmp_path)
    with pytest.raises(AnalysisError, match="--by must be one of"):
        rank(pd.DataFrame(), "best")


def test_a_sweep_row_shows_the_values_the_run_used(sweep_folder):
    import pandas as pd

    csv = pd.read_csv(sweep_folder / "trials.csv")
    csv.loc[csv["trial_id"] == "B", "lr"] = 0.5  # sampled 0.5, but the run used 1e-4
    csv.to_csv(sweep_folder / "trials.csv", index=False)
    table = load_runs(sweep_folder)
    assert table.loc[table["trial"] == "B", "lr"].item() == 1e-4
