"""hpsearch seeds: which seeds, what is rerun, and the statistics against a hand computation."""
from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from runfolders import write_run

from cl_rnn.config import Config
from hpsearch.analyze import AnalysisError, load_runs
from hpsearch.seeds import SEEDS_CSV, format_statistics, run_seeds, seeds_for

# seed -> (during per task, final per task), or None: the rerun raises
OUTCOMES = {42: ([70, 80, 90], [60, 70, 80]),   # during 80, final 70
            0: ([60, 60, 60], [50, 50, 50]),    # during 60, final 50
            1: ([95, 85, 90], [90, 90, 90]),    # during 90, final 90
            2: None}


class FakeRunner:
    """Writes each config's run folder with constructed accuracies instead of training."""

    def __init__(self) -> None:
        self.calls: list[list[Config]] = []

    def __call__(self, configs: list[Config]) -> list[str]:
        self.calls.append(configs)
        errors = []
        for config in configs:
            assert config.during_acc_criterion == "-1"
            outcome = OUTCOMES[config.random_seed]
            if outcome is None:
                errors.append("TrainingDiverged: loss is nan")
                continue
            write_run(Path(config.out_dir), config, *outcome)
            errors.append("")
        return errors


def test_seeds_are_the_original_then_the_smallest_unused():
    assert seeds_for(42, 10) == [42, 0, 1, 2, 3, 4, 5, 6, 7, 8]
    assert seeds_for(3, 5) == [3, 0, 1, 2, 4]
    assert seeds_for(7, 1) == [7]
    with pytest.raises(AnalysisError, match="--num-seeds"):
        seeds_for(42, 0)


def test_statistics_match_a_hand_computation(sweep_folder):
    runner = FakeRunner()
    table = load_runs(sweep_folder)
    rows, stats = run_seeds(sweep_folder, table, runner, by="final", num_seeds=4)
    assert [c.random_seed for c in runner.calls[0]] == [42, 0, 1, 2]
    assert list(rows["state"]) == ["finished", "finished", "finished", "failed"]
    assert rows["error"].iloc[3] == "TrainingDiverged: loss is nan"
    row = stats.iloc[0]
    assert row["trial"] == "B" and row["runs"] == 4 and row["finished"] == 3
    # final means 70, 50, 90: mean 70, population std sqrt(800/3), SEM std / sqrt(3)
    std = math.sqrt(((70 - 70) ** 2 + (50 - 70) ** 2 + (90 - 70) ** 2) / 3)
    assert row["final_mean"] == pytest.approx(70) and row["final_std"] == pytest.approx(std)
    assert row["final_sem"] == pytest.approx(std / math.sqrt(3)) and row["final_min"] == 50
    # during means 80, 60, 90
    assert row["during_mean"] == pytest.approx(230 / 3) and row["during_min"] == 60
    assert pd.read_csv(sweep_folder / SEEDS_CSV)["seed"].tolist() == [42, 0, 1, 2]
    assert "SEM 9.43" in format_statistics(stats)


def test_finished_reruns_are_not_run_again_failed_ones_are(sweep_folder):
    runner = FakeRunner()
    table = load_runs(sweep_folder)
    run_seeds(sweep_folder, table, runner, num_seeds=3)
    run_seeds(sweep_folder, table, runner, num_seeds=4)
    # seed 0 fails for real now: its run folder says so, and it is tried again next time
    write_run(Path(sweep_folder / "seeds" / "B" / "seed_0"), Config(), [50.0], [50.0], finished=False,
              stop_reason="loss became nan at iteration 3")
    run_seeds(sweep_folder, table, runner, num_seeds=4)
    assert [[c.random_seed for c in call] for call in runner.calls] == [[42, 0, 1], [2], [0, 2]]


def test_top_two_winners_each_get_their_seeds(sweep_folder):
    runner = FakeRunner()
    rows, stats = run_seeds(sweep_folder, load_runs(sweep_folder), runner, by="during", top=2,
                            num_seeds=2)
    assert list(stats["trial"]) == ["A", "C"]
    assert rows.groupby("trial")["seed"].apply(list).to_dict() == {"A": [42, 0], "C": [42, 0]}


def test_the_during_criterion_is_switched_off_for_reruns(tmp_path):
    from runfolders import trial_config

    write_run(tmp_path / "runs" / "r", trial_config(1e-3, 64).replace(during_acc_criterion="55"),
              [60.0] * 3, [50.0] * 3)
    runner = FakeRunner()  # asserts the criterion is "-1" in every config it gets
    rows, _ = run_seeds(tmp_path / "runs", load_runs(tmp_path / "runs"), runner, num_seeds=2)
    assert len(runner.calls[0]) == 2 and list(rows["state"]) == ["finished", "finished"]


def test_reruns_run_as_ray_trials_and_the_original_seed_reproduces(tmp_path, tiny_dataset_path):
    import functools

    import numpy as np

    from cl_rnn.train import train
    from hpsearch import ray_adapter
    from hpsearch.analyze import read_matrix
    from hpsearch.seeds import SEEDS_DIR, rerun_dir

    sweep = tmp_path / "sweep"
    original = Config(multi_head=True, num_tasks=2, n_iter=20, batch_size=16, rnn_arch="8", lr=0.005,
                      val_set_size=20, val_iter=10, random_seed=5, during_acc_criterion="1",
                      data=str(tiny_dataset_path), out_dir=str(sweep / "trial_x" / "run"))
    train(original)
    runner = functools.partial(ray_adapter.run_configs, storage=sweep / SEEDS_DIR, max_concurrent=2)
    rows, stats = run_seeds(sweep, load_runs(sweep), runner, num_seeds=2)
    assert list(rows["seed"]) == [5, 0] and list(rows["state"]) == ["finished", "finished"]
    assert stats.iloc[0]["finished"] == 2
    assert len(load_runs(sweep)) == 1  # the reruns under seeds/ are not trials of the folder
    np.testing.assert_array_equal(read_matrix(rerun_dir(sweep, "trial_x/run", 5)),
                                  read_matrix(sweep / "trial_x" / "run"))
