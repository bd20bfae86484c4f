"""Sweeps on a private local Ray instance, with fake training functions (milliseconds per trial)."""
from __future__ import annotations

import json
import math

import optuna
import pytest

import hpsearch_fakes
from cl_rnn.config import Config
from hpsearch import flags, journal, sweep
from hpsearch.settings import SweepError, SweepSettings, prepare, resume_dir
from hpsearch.trial import FAILED, FINISHED, PRUNED

STATES = {FINISHED: optuna.trial.TrialState.COMPLETE, PRUNED: optuna.trial.TrialState.PRUNED,
          FAILED: optuna.trial.TrialState.FAIL}


def settings(tmp_path, name, **changes) -> SweepSettings:
    base = dict(method="finetune", num_samples=8, n_iter=5, name=name, results=str(tmp_path),
                flags={"num_tasks": 3})
    return SweepSettings(**{**base, **changes})


def load_journal(tmp_path, name):
    return journal.open_study(tmp_path / name / journal.JOURNAL, name)


def expected_state(lr: float, criterion: float) -> str:
    if lr > 1e-3:
        return FAILED
    # The fake's accuracy falls by one per task; with 3 tasks the criterion applies to tasks 0 and 1.
    return PRUNED if hpsearch_fakes.accuracy(Config(lr=lr), 1) < criterion else FINISHED


def test_eight_trials_finish_prune_and_fail_as_their_runs_do(tmp_path, ray_local, capsys):
    rows = sweep.run(settings(tmp_path, "mixed", flags={"num_tasks": 3, "during_acc_criterion": "70"}),
                     train=hpsearch_fakes.train_failing)
    assert len(rows) == 8
    states = {row["trial_id"]: row["state"] for row in rows}
    assert [row["state"] for row in rows] == [expected_state(row["lr"], 70.0) for row in rows]
    assert set(states.values()) == {FINISHED, PRUNED, FAILED}
    for row in rows:
        run_dir = tmp_path / "mixed" / row["run_folder"]
        if row["state"] == FAILED:
            assert row["error"].startswith("TrainingDiverged: loss is nan") and row["final_mean"] == -math.inf
        else:
            assert (run_dir / "config.json").is_file() and row["error"] == ""
            assert math.isfinite(row["final_mean"]) and row["node"]
        if row["state"] == PRUNED:
            assert "during_acc_criterion" in row["stop_reason"] and row["tasks_done"] < 3
    study = load_journal(tmp_path, "mixed")
    assert {t.user_attrs[journal.RAY_ID]: t.state for t in study.trials} == {
        tid: STATES[state] for tid, state in states.items()}
    out = capsys.readouterr().out
    assert sum(line.startswith("[") for line in out.splitlines()) == 8
    assert "best trial by final accuracy" in out and "run folder" in out


def test_eight_real_tiny_runs(tmp_path, ray_local, tiny_dataset_path, capsys):
    """cl_rnn.train.train in every trial: run folders like single runs, a journal of 8 complete trials;
    a --flag pins its flag: every run has it, and the Optuna study never sampled it."""
    rows = sweep.run(settings(tmp_path, "real", data=str(tiny_dataset_path), n_iter=20,
                              flags={**hpsearch_fakes.TINY, "rnn_arch": "32"}))
    assert len(rows) == 8 and all(row["state"] == FINISHED for row in rows)
    for row in rows:
        run_dir = tmp_path / "real" / row["run_folder"]
        assert (run_dir / "performance_overview.txt").is_file() and (run_dir / "accuracy_matrix.csv").is_file()
        assert f"--lr={row['lr']!r}" in (run_dir / "command.txt").read_text()
        assert json.loads((run_dir / "config.json").read_text())["rnn_arch"] == "32" and row["rnn_arch"] == "32"
        assert 0 <= row["final_mean"] <= 100 and 0 <= row["during_mean"] <= 100
    study = load_journal(tmp_path, "real")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 8
    assert all("rnn_arch" not in t.params and "lr" in t.params and t.user_attrs["rnn_arch"] == "32"
               for t in study.trials)
    assert study.best_value == max(row["final_mean"] for row in rows)
    command = next(line for line in capsys.readouterr().out.splitlines() if "command: " in line)
    assert command.startswith("  command: python3 train_split_audioset.py") and "--out_dir" not in command


def test_asha_stops_weak_trials_after_a_task(tmp_path, ray_local):
    rows = sweep.run(settings(tmp_path, "asha", scheduler="asha", max_concurrent=1, flags={"num_tasks": 4}),
                     train=hpsearch_fakes.train)
    stopped = [row for row in rows if row["state"] == PRUNED]
    assert len(rows) == 8 and stopped and len(stopped) < 8
    assert all(row["tasks_done"] < 4 and "scheduler" in row["stop_reason"] for row in stopped)
    assert all(0 <= row["cpu_seconds"] < 60 for row in rows)  # a stopped trial's cost: from its last report
    pruned = [t for t in load_journal(tmp_path, "asha").trials if t.state == optuna.trial.TrialState.PRUNED]
    assert len(pruned) == len(stopped) and all(t.intermediate_values for t in pruned)


def test_a_crashed_worker_is_retried_and_the_sweep_goes_on(tmp_path, ray_local):
    import ray

    rows = sweep.run(settings(tmp_path, "crash", num_samples=3, max_concurrent=1,
                              flags={"num_tasks": 2}),
                     train=hpsearch_fakes.train_crashing_once)
    assert ray.is_initialized()
    assert (tmp_path / "crash" / "crashed").exists()  # one worker died, its trial ran again
    assert sorted(row["state"] for row in rows) == [FINISHED, FINISHED, FINISHED]


def test_a_taken_name_is_refused_before_ray_starts(tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(SweepError, match="exists: continue it with --resume taken"):
        sweep.run(settings(tmp_path, "taken"))


def test_the_data_is_loaded_after_the_cheap_refusals_and_not_for_a_replacement_trainer(tmp_path, monkeypatch):
    checked = []
    monkeypatch.setattr(sweep, "check_data", lambda settings: checked.append(settings.name))
    monkeypatch.setattr(sweep, "_execute", lambda settings, train, resuming: [])  # no Ray
    (tmp_path / "taken").mkdir()
    with pytest.raises(SweepError, match="exists: continue it with --resume taken"):
        sweep.run(settings(tmp_path, "taken"))
    with pytest.raises(SweepError, match="unknown method 'nope'"):
        sweep.run(settings(tmp_path, "x", method="nope"))
    sweep.run(settings(tmp_path, "fake"), train=hpsearch_fakes.train)
    sweep.run(settings(tmp_path, "fake_too", train="hpsearch_fakes:train"))
    assert checked == []
    sweep.run(settings(tmp_path, "real"))
    assert checked == ["real"]


def test_a_linked_results_folder_gives_one_sweep_folder_on_run_and_resume(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    new = settings(tmp_path / "link", "s")
    prepare(new)
    (tmp_path / "link" / "s").mkdir()
    assert new.sweep_dir == resume_dir(str(tmp_path / "link"), "s") == tmp_path / "link" / "s"


def test_bad_settings_are_refused_with_one_line(tmp_path):
    with pytest.raises(SweepError, match="unknown method 'nope'"):
        sweep.run(settings(tmp_path, "x", method="nope"))
    with pytest.raises(SweepError, match="--num_tasks: must be positive"):
        sweep.run(settings(tmp_path, "y", flags={"num_tasks": 0}))
    with pytest.raises(SweepError, match="--data .*: no such file"):
        sweep.run(settings(tmp_path, "z", data=str(tmp_path / "missing.h5")))
    with pytest.raises(SweepError, match="a multitask run has no during accuracy"):
        sweep.run(settings(tmp_path, "m", method="multitask", metric="during"))
    with pytest.raises(flags.FlagError, match="--flag n_iter: the sweep sets it"):
        flags.parse_flags(["n_iter=3"])
    assert flags.parse_flags(["num_tasks=2", "multi_head=true", "lr=0.5"]) == {
        "num_tasks": 2, "multi_head": True, "lr": 0.5}
