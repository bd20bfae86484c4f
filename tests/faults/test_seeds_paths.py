"""hpsearch seeds as README writes it (a relative sweep path): the reruns land in the sweep folder, not in
the Ray worker's working folder; when every rerun fails, exit status 1 and the first error.  A single run's
relative --data is the file next to where the run ran, for its reruns and its exported line."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "analysis"))
from runfolders import build_sweep_folder, write_run  # noqa: E402

from cl_rnn.config import Config  # noqa: E402
from hpsearch.cli import main as hpsearch_main  # noqa: E402
from hpsearch.seeds import SEEDS_CSV, rerun_dir  # noqa: E402


@pytest.mark.parametrize("data", ["absolute", "relative"])
def test_a_relative_sweep_path_from_the_users_folder(ray_local, tmp_path, tiny_dataset_path, monkeypatch, capsys,
                                                     data):
    from cl_rnn.train import train

    os.symlink(tiny_dataset_path, tmp_path / "tiny.h5")
    monkeypatch.chdir(tmp_path)
    original = Config(multi_head=True, num_tasks=2, n_iter=20, batch_size=16, rnn_arch="8", lr=0.005,
                      val_set_size=20, val_iter=10, random_seed=5,
                      data=str(tmp_path / "tiny.h5") if data == "absolute" else "tiny.h5",
                      out_dir="results/mine/trial_x/run")
    train(original)
    assert hpsearch_main(["seeds", "results/mine", "--num-seeds", "2", "--max-concurrent", "2"]) == 0
    rows = pd.read_csv(tmp_path / "results" / "mine" / SEEDS_CSV)
    assert list(rows["state"]) == ["finished", "finished"], rows["error"].tolist()
    for seed in (5, 0):
        assert (rerun_dir(tmp_path / "results" / "mine", "trial_x/run", seed) / "result.json").is_file()
    assert "2 of 2 reruns finished" in capsys.readouterr().out


def test_every_rerun_failed_exits_1_with_the_first_error(tmp_path, monkeypatch, capsys):
    received: list[Config] = []

    def run_configs(configs: list[Config], **_: object) -> list[str]:
        received.extend(configs)
        return [f"TrainingDiverged: loss is nan (seed {c.random_seed})" for c in configs]

    monkeypatch.setattr("hpsearch.ray_adapter.run_configs", run_configs)
    build_sweep_folder(tmp_path / "results" / "s")
    monkeypatch.chdir(tmp_path)
    assert hpsearch_main(["seeds", "results/s", "--num-seeds", "3"]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        "hpsearch seeds: all 3 reruns failed; the first: TrainingDiverged: loss is nan (seed 42)"]
    # what reached the runner (and so a Ray trial) holds no relative path
    assert all(Path(c.out_dir).is_absolute() and c.out_dir.startswith(str(tmp_path)) for c in received)


@pytest.mark.parametrize("finished_before", [True, False])
def test_one_finished_rerun_means_exit_0(tmp_path, monkeypatch, finished_before):
    from runfolders import write_run

    def run_configs(configs: list[Config], **_: object) -> list[str]:
        if not finished_before:
            write_run(Path(configs[0].out_dir), configs[0], [60.0] * 3, [70.0] * 3)
        return ["" if k == 0 and not finished_before else "boom" for k in range(len(configs))]

    monkeypatch.setattr("hpsearch.ray_adapter.run_configs", run_configs)
    sweep = build_sweep_folder(tmp_path / "s")
    if finished_before:  # an earlier hpsearch seeds finished seed 42: it is not rerun, and it counts
        write_run(rerun_dir(sweep, "B", 42), Config(), [60.0] * 3, [70.0] * 3)
    assert hpsearch_main(["seeds", str(sweep), "--num-seeds", "3"]) == 0


def test_the_reruns_of_a_single_run_use_the_data_file_next_to_where_it_ran(tmp_path, monkeypatch):
    # a single run trained with a relative --data in folder a; hpsearch seeds run from folder b
    received: list[Config] = []

    def run_configs(configs: list[Config], **_: object) -> list[str]:
        received.extend(configs)
        for config in configs:
            write_run(Path(config.out_dir), config, [60.0] * 3, [70.0] * 3)
        return [""] * len(configs)

    monkeypatch.setattr("hpsearch.ray_adapter.run_configs", run_configs)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    write_run(Path("runs") / "r", Config(multi_head=True, num_tasks=3, data="d.h5"), [60.0] * 3, [70.0] * 3)
    monkeypatch.chdir(tmp_path / "b")
    assert hpsearch_main(["seeds", str(tmp_path / "a" / "runs"), "--num-seeds", "2"]) == 0
    assert [c.data for c in received] == [str(tmp_path / "a" / "d.h5")] * 2


def test_a_single_runs_relative_data_file_is_the_one_next_to_where_it_ran(tmp_path, monkeypatch, capsys):
    # cd a; train_split_audioset.py --data d.h5 ...; cd b; hpsearch export ../a/runs: the line names a/d.h5,
    # not b/d.h5 (the exporter's folder), and so does the run's own command.txt.
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    run = write_run(Path("runs") / "r", Config(multi_head=True, num_tasks=3, data="d.h5"), [60.0] * 3, [70.0] * 3)
    monkeypatch.chdir(tmp_path / "b")
    assert hpsearch_main(["export", str(tmp_path / "a" / "runs"), "--out", "w.txt"]) == 0
    line = (tmp_path / "b" / "w.txt").read_text().splitlines()[1]
    assert f"--data={tmp_path / 'a' / 'd.h5'}" in line, line
    assert f"--data={tmp_path / 'a' / 'd.h5'}" in (tmp_path / "a" / run / "command.txt").read_text()
