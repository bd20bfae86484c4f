"""``hpsearch run --population P`` and population seed reruns, with the real trainer on tiny data."""
from __future__ import annotations

import functools

import numpy as np
import optuna

import hpsearch_fakes
from hpsearch import journal, sweep
from hpsearch.analyze import load_runs, read_matrix, select
from hpsearch.population import batch_groups, ray_trial_id
from hpsearch.seeds import SEEDS_DIR, rerun_dir, run_seeds
from hpsearch.settings import SweepSettings, check
from hpsearch.trial import FINISHED


def test_a_population_sweep_is_read_like_any_sweep(tmp_path, ray_local, tiny_dataset_path, capsys):
    settings = SweepSettings(method="ewc", num_samples=5, population=3, n_iter=20, name="pop",
                             results=str(tmp_path), data=str(tiny_dataset_path), flags=hpsearch_fakes.TINY)
    rows = sweep.run(settings)
    assert len(rows) == 5 and all(row["state"] == FINISHED for row in rows)
    populations: dict[str, list[dict]] = {}
    for row in rows:
        populations.setdefault(ray_trial_id(row["trial_id"]), []).append(row)
    assert sorted(len(members) for members in populations.values()) == [2, 3]
    for members in populations.values():  # one network shape and method per population, own lr
        assert len({(m["rnn_arch"], m["batch_size"], m["ewc_gamma"]) for m in members}) == 1
        assert len({m["lr"] for m in members}) == len(members)
    for row in rows:
        run_dir = tmp_path / "pop" / row["run_folder"]
        assert f"--lr={row['lr']!r}" in (run_dir / "command.txt").read_text()
        assert (run_dir / "accuracy_matrix.csv").is_file()
    study = journal.open_study(tmp_path / "pop" / journal.JOURNAL, "pop")
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 5
    assert study.best_value == max(row["final_mean"] for row in rows)
    table = load_runs(tmp_path / "pop")
    assert len(table) == 5 and select(table, "final", 1)["final"].iloc[0] == max(r["final_mean"] for r in rows)
    assert capsys.readouterr().out.count("finished") >= 5


def test_a_method_that_cannot_be_batched_runs_single_trials(tmp_path):
    settings = SweepSettings(method="multitask", num_samples=2, population=4, name="mt", results=str(tmp_path))
    notices = check(settings)
    assert settings.population == 1
    assert len(notices) == 1 and "--multitask is not batched" in notices[0]


def test_seed_reruns_train_as_one_population(tmp_path, ray_local, tiny_dataset_path):
    from cl_rnn.config import Config
    from cl_rnn.train import train
    from hpsearch import ray_adapter

    sweep_dir = tmp_path / "sweep"
    original = Config(multi_head=True, num_tasks=2, n_iter=20, batch_size=16, rnn_arch="8", lr=0.005,
                      val_set_size=20, val_iter=10, random_seed=5, data=str(tiny_dataset_path),
                      out_dir=str(sweep_dir / "trial_x" / "run"))
    train(original)
    configs = [original.replace(random_seed=s, out_dir=str(tmp_path / f"c{s}")) for s in range(3)]
    assert batch_groups(dict(enumerate(configs)), 2) == [[0, 1], [2]]
    runner = functools.partial(ray_adapter.run_configs, storage=sweep_dir / SEEDS_DIR, population=3)
    rows, stats = run_seeds(sweep_dir, load_runs(sweep_dir), runner, num_seeds=3)
    assert list(rows["seed"]) == [5, 0, 1] and list(rows["state"]) == [FINISHED] * 3
    assert stats.iloc[0]["finished"] == 3
    # the rerun of the original seed, trained in a population, is the original single run bit for bit
    np.testing.assert_array_equal(read_matrix(rerun_dir(sweep_dir, "trial_x/run", 5)),
                                  read_matrix(sweep_dir / "trial_x" / "run"))


def test_a_killed_population_sweep_resumes(tmp_path, tiny_dataset_path):
    """As test_hpsearch_resume, with populations of 2: finished members stay, the searcher keeps its history."""
    import os
    import signal
    import subprocess

    from hpsearch import records
    from hpsearch_fakes import TINY, subprocess_env
    from test_hpsearch_resume import finished_rows, group_alive, hpsearch, wait_for

    env, csv = subprocess_env(), tmp_path / "k" / records.TRIALS_CSV
    driver = subprocess.Popen(
        hpsearch("run", "--method", "ewc", "--num-samples", "8", "--population", "2", "--max-concurrent", "2",
                 "--n-iter", "150", "--data", str(tiny_dataset_path), "--results", str(tmp_path), "--name", "k",
                 *(f"--flag={name}={value}" for name, value in {**TINY, "rnn_arch": "32", "batch_size": 64}.items())),
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: len(finished_rows(csv)) >= 2, 120, "a finished population")
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
        wait_for(lambda: not group_alive(driver.pid), 20, "the killed sweep's processes to exit")
    before = finished_rows(csv)
    assert 2 <= len(before) < 8
    resumed = subprocess.run(hpsearch("run", "--resume", "k", "--results", str(tmp_path)), env=env,
                             capture_output=True, text=True, timeout=240, start_new_session=True)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    after = records.read_rows(csv)
    assert len(after) == 8 and all(row["state"] == FINISHED for row in after.values())
    assert set(before) <= set(after) and all(ray_trial_id(tid) != tid for tid in after)
    assert len({row["lr"] for row in after.values()}) == 8
    study = journal.open_study(tmp_path / "k" / journal.JOURNAL, "k")
    assert set(journal.mirrored_ids(study)) >= set(after)


def test_members_finish_prune_and_fail_one_by_one(tmp_path, ray_local):
    """With a replacement trainer (--train), members run one by one; each gets its own outcome."""
    from test_hpsearch_sweep import STATES, expected_state

    settings = SweepSettings(method="finetune", num_samples=8, population=4, n_iter=5, name="mixed",
                             results=str(tmp_path), flags={"num_tasks": 3, "during_acc_criterion": "70"})
    rows = sweep.run(settings, train=hpsearch_fakes.train_failing)
    assert len(rows) == 8 and len({ray_trial_id(row["trial_id"]) for row in rows}) == 2
    assert [row["state"] for row in rows] == [expected_state(row["lr"], 70.0) for row in rows]
    study = journal.open_study(tmp_path / "mixed" / journal.JOURNAL, "mixed")
    assert {t.user_attrs[journal.RAY_ID]: t.state for t in study.trials} == {
        row["trial_id"]: STATES[row["state"]] for row in rows}


def test_asha_stops_populations(tmp_path, ray_local):
    settings = SweepSettings(method="finetune", num_samples=8, population=2, n_iter=5, name="asha",
                             results=str(tmp_path), scheduler="asha", max_concurrent=1,
                             flags={"num_tasks": 4})
    rows = sweep.run(settings, train=hpsearch_fakes.train)
    stopped = [row for row in rows if row["state"] != FINISHED]
    assert len(rows) == 8 and stopped and len(stopped) < 8
    assert all("scheduler" in row["stop_reason"] for row in stopped)


def test_a_population_that_ended_is_not_trained_again(tmp_path, tiny_dataset_path):
    """A population trial started again after it ended (its driver died before Ray recorded the end)
    reports its members' saved results: their folders are not rewritten."""
    from cl_rnn.population import train_population
    from cl_rnn.train import train
    from hpsearch.population import run_population_trial
    from hpsearch.trial import TrialPlan

    plan = TrialPlan("finetune", {**hpsearch_fakes.TINY, "n_iter": 20, "data": str(tiny_dataset_path),
                                  "rnn_arch": "32", "batch_size": 64}, "final", str(tmp_path))
    members = [{"lr": 0.001}, {"lr": 0.002}]
    first = run_population_trial(members, plan, tmp_path / "trial_x", lambda metrics: None, train_population, train)
    stamps = sorted(p.stat().st_mtime_ns for p in (tmp_path / "trial_x").glob("run_*/result.json"))

    def must_not_train(*args, **kwargs):
        raise AssertionError("an ended population was trained again")

    again = run_population_trial(members, plan, tmp_path / "trial_x", lambda metrics: None, must_not_train,
                                 must_not_train)
    assert [m["final_mean"] for m in again] == [m["final_mean"] for m in first]
    assert all(m["state"] == FINISHED for m in again)
    assert sorted(p.stat().st_mtime_ns for p in (tmp_path / "trial_x").glob("run_*/result.json")) == stamps
