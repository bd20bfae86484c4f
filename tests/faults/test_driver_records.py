"""What a sweep records about its trials: the trained duration of a trial re-reported after a resume, and
the runs of a live sweep shown as running."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from hpsearch_fakes import _write_run, train

from cl_rnn.config import Config
from hpsearch import analyze, lock
from hpsearch.trial import FAILED, FINISHED, RUNNING, TrialPlan, ended_result, run_trial

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analysis"))
from runfolders import build_sweep_folder  # noqa: E402


def test_a_trial_that_re_reports_its_saved_result_keeps_its_trained_duration(tmp_path):
    # After a driver kill, a trial that ended after Ray's last snapshot runs again and reports its saved
    # result (ended_result) instead of training: its duration is the run's, not the milliseconds of reading it.
    plan = TrialPlan("finetune", {"num_tasks": 2, "n_iter": 5}, "final", str(tmp_path))
    run_dir = tmp_path / "trial_x" / "run"
    reports: list[dict] = []
    first = run_trial({"lr": 1e-3}, plan, run_dir, reports.append, train)
    saved = json.loads((run_dir / "result.json").read_text())
    (run_dir / "result.json").write_text(json.dumps({**saved, "seconds": 3.2}))  # as a real run records it
    again = run_trial({"lr": 1e-3}, plan, run_dir, reports.append, lambda config, report=None: ended_result(config))
    assert again["state"] == FINISHED and again["final_mean"] == first["final_mean"]
    assert again["duration"] == 3.2
    assert 0 < first["duration"] < 3.2  # a run that trained now: its own time


def test_analyze_shows_the_unended_runs_of_a_live_sweep_as_running(tmp_path):
    sweep_dir = tmp_path / "s"
    config = Config(num_tasks=3)
    _write_run(config, sweep_dir / "trial_a" / "run", [70.0], [70.0], False, None)  # after task 0 of 3
    started = sweep_dir / "trial_b" / "run"  # its config written, no result yet
    started.mkdir(parents=True)
    (started / "config.json").write_text(json.dumps({"num_tasks": 3}))
    (started / "command.txt").write_text("python3 train_split_audioset.py --num_tasks=3\n")
    _write_run(config, sweep_dir / "trial_c" / "run", [70.0] * 3, [70.0] * 3, True, None)
    with lock.held(sweep_dir):  # the sweep's driver is alive
        table = analyze.load_runs(sweep_dir)
    assert dict(table[["trial", "state"]].to_numpy()) == {
        "trial_a/run": RUNNING, "trial_b/run": RUNNING, "trial_c/run": FINISHED}
    assert analyze.state_counts(table) == "1 finished, 0 pruned, 0 failed, 2 running"
    table = analyze.load_runs(sweep_dir)  # its driver is gone: they will never end
    assert dict(table[["trial", "state"]].to_numpy()) == {
        "trial_a/run": FAILED, "trial_b/run": FAILED, "trial_c/run": FINISHED}


def _unended_runs(sweep_dir, count: int) -> None:
    for k in range(count):
        _write_run(Config(num_tasks=3), sweep_dir / f"trial_{k:02d}" / "run", [70.0], [70.0], False, None)


@pytest.mark.parametrize("layout", ["run_folders", "trials_csv"])
def test_analyze_asks_once_whether_the_sweeps_driver_lives(tmp_path, monkeypatch, layout):
    # Every probe of driver.lock is a shared lock that a resuming driver's exclusive lock can land in, and a
    # sweep's run folders all share one driver: one question per analysis, not up to 3 per run folder.
    sweep_dir = tmp_path / "s"
    build_sweep_folder(sweep_dir) if layout == "trials_csv" else _unended_runs(sweep_dir, 12)
    asked: list = []
    real = lock.holder
    monkeypatch.setattr(lock, "holder", lambda folder: asked.append(folder) or real(folder))
    with lock.held(sweep_dir):
        table = analyze.load_runs(sweep_dir)
    assert asked == [sweep_dir]
    if layout == "run_folders":
        assert analyze.state_counts(table) == "0 finished, 0 pruned, 0 failed, 12 running"
    asked.clear()
    assert "running" not in analyze.state_counts(analyze.load_runs(sweep_dir))
    assert asked == [sweep_dir]
