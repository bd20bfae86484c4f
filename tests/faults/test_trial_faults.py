"""Faults inside sweep trials: an exception, a NaN/inf loss, a worker process killed mid-task."""
from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hpsearch_fakes import TINY

from cl_rnn import checkpoint
from cl_rnn.config import Config
from cl_rnn.train import TrainingDiverged, train
from hpsearch import analyze, cli, journal, population, ray_trials, sweep
from hpsearch.settings import SweepSettings
from hpsearch.trial import FAILED, FINISHED
import fault_trainers

SMALL_NET = {"rnn_arch": "32", "batch_size": 64, "use_best_models": False}
TASK_ITERATIONS = 1200  # per task of the killed trial


def settings(tmp_path: Path, name: str, **changes) -> SweepSettings:
    base = dict(method="finetune", num_samples=4, max_concurrent=2, n_iter=20, results=str(tmp_path), name=name,
                flags={"num_tasks": 2})
    return SweepSettings(**{**base, **changes})


def assert_never_ranked(sweep_dir: Path, failed_ids: set[str]) -> None:
    table = analyze.load_runs(sweep_dir)
    ranked = analyze.select(table, "final", 0, None)
    assert failed_ids and not failed_ids & set(ranked["trial"])
    assert len(ranked) == len(table) - len(failed_ids)


def test_a_raising_trial_is_recorded_failed_with_its_message_and_the_sweep_goes_on(tmp_path, ray_local):
    rows = sweep.run(settings(tmp_path, "raise"), train=fault_trainers.train_raising)
    failed = [row for row in rows if row["state"] == FAILED]
    assert len(rows) == 4 and len(failed) == 1 and [row["state"] for row in rows].count(FINISHED) == 3
    assert failed[0]["error"] == "RuntimeError: injected fault after task 0"
    assert failed[0]["final_mean"] == -math.inf
    study = journal.open_study(tmp_path / "raise" / journal.JOURNAL, "raise")
    assert sorted(t.state.name for t in study.trials) == sorted(
        "FAIL" if row["state"] == FAILED else "COMPLETE" for row in rows)
    assert_never_ranked(tmp_path / "raise", {row["trial_id"] for row in failed})


@pytest.mark.parametrize("trainer, status", [("train_always_raising", 1), ("train_raising", 0)])
def test_hpsearch_run_exits_1_only_when_every_trial_failed(tmp_path, ray_local, capsys, trainer, status):
    argv = ["run", "--method", "finetune", "--num-samples", "3", "--n-iter", "5", "--flag", "num_tasks=2",
            "--train", f"fault_trainers:{trainer}", "--results", str(tmp_path), "--name", trainer]
    assert cli.main(argv) == status
    err = capsys.readouterr().err
    assert ("hpsearch run: all 3 trials failed; the first: ValueError: injected fault in every trial" in err) == (
        status == 1)


def test_a_nan_loss_fails_the_trial_keeps_its_first_task_and_is_never_ranked(tmp_path, ray_local,
                                                                            tiny_dataset_path):
    rows = sweep.run(settings(tmp_path, "nan", data=str(tiny_dataset_path),
                              flags={**TINY, **SMALL_NET}), train=fault_trainers.train_poisoned)
    failed = [row for row in rows if row["state"] == FAILED]
    assert len(failed) == 1 and [row["state"] for row in rows].count(FINISHED) == 3
    for row in failed:
        assert row["error"].startswith("TrainingDiverged: training diverged: the loss became nan at iteration 0")
        saved = json.loads((tmp_path / "nan" / row["run_folder"] / "result.json").read_text())
        assert not saved["finished"] and saved["stop_reason"] == "loss became nan at iteration 0"
        assert len(saved["during"]) == 1  # task 0's result is kept
    assert_never_ranked(tmp_path / "nan", {row["trial_id"] for row in failed})


@pytest.mark.parametrize("poison", [math.nan, math.inf, -math.inf])
def test_a_non_finite_loss_stops_the_run_with_a_clear_error(tmp_path, tiny_dataset_path, poison):
    config = Config(data=str(tiny_dataset_path), out_dir=str(tmp_path / "run"), n_iter=10, lr=0.01,
                    multi_head=True, **TINY)
    with pytest.raises(TrainingDiverged, match=rf"the loss became {poison} at iteration 0 \(try a smaller --lr"):
        fault_trainers.train_poisoned(config, poison=poison, fault=True)
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert not saved["finished"] and len(saved["during"]) == 1


def test_a_trial_whose_process_dies_every_time_is_failed_after_its_retries(tmp_path, ray_local):
    rows = sweep.run(settings(tmp_path, "die", num_samples=3), train=fault_trainers.train_crashing_always)
    failed = [row for row in rows if row["state"] == FAILED]
    assert len(rows) == 3 and len(failed) == 1 and [row["state"] for row in rows].count(FINISHED) == 2
    for row in failed:
        attempts = tmp_path / "die" / f"trial_{row['trial_id']}" / "attempts"
        assert int(attempts.read_text()) == 1 + ray_trials.MAX_RETRIES
        assert row["error"]  # Ray's own line about the dead worker


def kill_mid_task(trial_dir: Path, killed: dict, saved: Path | None = None) -> None:
    """SIGKILL the trial's process as soon as task 0 is checkpointed (``saved``, by default a single
    trial's checkpoint): it is then training task 1.

    No fixed sleep before the kill: a fast machine finishes a short task within any such sleep.
    The kill lands within a poll interval (5 ms) of the checkpoint, a small fraction of a task
    (TASK_ITERATIONS iterations take over half a second even at 2000 it/s)."""
    saved = saved or checkpoint.path_in(trial_dir / ray_trials.RUN_FOLDER)
    pid_file = trial_dir / ray_trials.PID_FILE
    deadline = time.monotonic() + 120
    while not (saved.is_file() and pid_file.is_file()) and time.monotonic() < deadline:
        time.sleep(0.005)
    killed["pid"] = int(pid_file.read_text())
    os.kill(killed["pid"], signal.SIGKILL)
    killed["checkpointed_task"] = checkpoint.read_payload(saved)["task"]


def test_a_trial_killed_mid_task_resumes_from_its_checkpoint_with_the_same_matrix(tmp_path, ray_local,
                                                                                tiny_dataset_path):
    flags = {**TINY, **SMALL_NET, "num_tasks": 3}
    plan = settings(tmp_path, "kill", num_samples=1, n_iter=TASK_ITERATIONS, data=str(tiny_dataset_path), flags=flags)
    killed: dict = {}
    sweep_dir = tmp_path / "kill"
    watcher = threading.Thread(target=lambda: kill_mid_task(next(_trial_dir(sweep_dir)), killed), daemon=True)
    watcher.start()
    (row,) = sweep.run(plan)
    watcher.join(5)
    assert killed.get("checkpointed_task") == 0, "the kill did not land in task 1"
    assert row["state"] == FINISHED
    run = sweep_dir / row["run_folder"]
    resumed = json.loads((run / "result.json").read_text())
    assert resumed["resumed_at"] == [1] and int((run.parent / ray_trials.PID_FILE).read_text()) != killed["pid"]
    config = Config(**{**json.loads((run / "config.json").read_text()), "out_dir": str(tmp_path / "whole")})
    whole = train(config)
    assert resumed["during"] == whole.during and resumed["final"] == whole.final
    assert (run / "accuracy_matrix.csv").read_text() == (whole.out_dir / "accuracy_matrix.csv").read_text()
    assert whole.resumed_at == [] and not np.isnan(whole.accuracy_matrix).any()


def test_a_population_killed_mid_task_resumes_from_its_checkpoint_with_the_same_matrices(
        tmp_path, ray_local, tiny_dataset_path):
    flags = {**TINY, **SMALL_NET, "num_tasks": 3}
    plan = settings(tmp_path, "killpop", num_samples=2, population=2, n_iter=TASK_ITERATIONS,
                    data=str(tiny_dataset_path), flags=flags)
    killed: dict = {}
    sweep_dir = tmp_path / "killpop"

    def kill() -> None:
        trial_dir = next(_trial_dir(sweep_dir))
        kill_mid_task(trial_dir, killed, trial_dir / population.CHECKPOINT.format(0))

    watcher = threading.Thread(target=kill, daemon=True)
    watcher.start()
    rows = sweep.run(plan)
    watcher.join(5)
    assert killed.get("checkpointed_task") == 0, "the kill did not land in task 1"
    assert len(rows) == 2 and all(row["state"] == FINISHED for row in rows)
    for row in rows:
        run = sweep_dir / row["run_folder"]
        resumed = json.loads((run / "result.json").read_text())
        assert resumed["resumed_at"] == [1]
        config = Config(**{**json.loads((run / "config.json").read_text()), "out_dir": str(tmp_path / row["trial_id"])})
        whole = train(config)  # the member's single run, never interrupted
        assert resumed["during"] == whole.during and resumed["final"] == whole.final
        assert (run / "accuracy_matrix.csv").read_text() == (whole.out_dir / "accuracy_matrix.csv").read_text()
    assert not list(sweep_dir.glob("trial_*/" + population.CHECKPOINT.format("*")))  # removed at the end


def test_a_population_retry_on_another_node_takes_the_checkpoints_tune_kept(tmp_path):
    from ray import tune

    kept = tmp_path / "tune_copy"
    kept.mkdir()
    (kept / population.CHECKPOINT.format(0)).write_bytes(b"after task 1")
    trial_dir = tmp_path / "trial"
    trial_dir.mkdir()
    ray_trials.bring_population_checkpoints(trial_dir, tune.Checkpoint.from_directory(str(kept)))  # a fresh node
    assert (trial_dir / population.CHECKPOINT.format(0)).read_bytes() == b"after task 1"
    (trial_dir / population.CHECKPOINT.format(0)).write_bytes(b"after task 2")  # this node's own is newer: kept
    ray_trials.bring_population_checkpoints(trial_dir, tune.Checkpoint.from_directory(str(kept)))
    assert (trial_dir / population.CHECKPOINT.format(0)).read_bytes() == b"after task 2"


def _trial_dir(sweep_dir: Path):
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = sorted(sweep_dir.glob("trial_*"))
        if found:
            yield found[0]
            return
        time.sleep(0.02)
    raise AssertionError("no trial folder appeared")


def test_a_retry_on_another_node_takes_the_checkpoint_tune_kept(tmp_path):
    from ray import tune

    kept = tmp_path / "tune_copy"
    kept.mkdir()
    (kept / checkpoint.FILE).write_bytes(b"task 1 state")
    run_dir = tmp_path / "trial" / ray_trials.RUN_FOLDER
    ray_trials.prepare_run_folder(run_dir, tune.Checkpoint.from_directory(str(kept)))  # a fresh node
    assert checkpoint.path_in(run_dir).read_bytes() == b"task 1 state"
    checkpoint.path_in(run_dir).write_bytes(b"task 2 state")  # this node's own is newer: kept
    ray_trials.prepare_run_folder(run_dir, tune.Checkpoint.from_directory(str(kept)))
    assert checkpoint.path_in(run_dir).read_bytes() == b"task 2 state"


def test_a_retry_clears_a_dead_attempt_but_never_an_ended_run(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "config.json").write_text("{}")  # died before its first task ended
    ray_trials.prepare_run_folder(run_dir, None)
    assert not run_dir.exists()
    run_dir.mkdir()
    (run_dir / "result.json").write_text(json.dumps({"finished": True, "stop_reason": None, "during": [70.0],
                                                     "final": [70.0]}))
    ray_trials.prepare_run_folder(run_dir, None)
    assert (run_dir / "result.json").exists()
