"""A resumed run never mixes two datasets: its checkpoint holds the fingerprint of the data it trained on."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cl_rnn import checkpoint
from cl_rnn.cli import train_main
from cl_rnn.data.surrogate import write_surrogate
from cl_rnn.train import train
from train_helpers import small_config, synthetic_tasks

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("quiet_run_log")
FLAGS = ["--num_tasks=3", "--n_iter=400", "--val_set_size=10", "--loglevel_info"]


@pytest.fixture(scope="module")
def two_datasets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The surrogate of seed 0 and of seed 1: same shapes and classes, other contents."""
    folder = tmp_path_factory.mktemp("two_datasets")
    return (write_surrogate(folder / "seed0.h5", seed=0, clips_per_class=30),
            write_surrogate(folder / "seed1.h5", seed=1, clips_per_class=30))


def point(link: Path, target: Path) -> None:
    link.unlink(missing_ok=True)
    link.symlink_to(target)


def killed_after_first_checkpoint(argv: list[str], run: Path) -> None:
    """The issue's scenario: the run's process SIGKILLed once its first checkpoint is on disk."""
    process = subprocess.Popen([sys.executable, str(REPO / "train_split_audioset.py"), *argv],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not checkpoint.path_in(run).exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert checkpoint.load(checkpoint.path_in(run)).task == 0


def test_a_resume_on_other_data_under_the_same_path_is_refused_in_one_line(tmp_path, two_datasets, capsys):
    first, second = two_datasets
    link, run = tmp_path / "d.h5", tmp_path / "run"
    argv = [f"--data={link}", f"--out_dir={run}", *FLAGS]
    point(link, first)
    killed_after_first_checkpoint(argv, run)
    point(link, second)
    assert train_main(argv) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert re.fullmatch(rf"train_split_audioset.py: error: --data {re.escape(str(link))}: not the data the "
                        rf"checkpoint in {re.escape(str(run))} was trained on \(fingerprint [0-9a-f]{{12}}, the "
                        r"checkpoint's [0-9a-f]{12}\); use that data, or pass --overwrite to start afresh", line), line
    assert checkpoint.load(checkpoint.path_in(run)).task == 0  # the checkpoint is kept for the right data
    point(link, first)  # the right data again: the run continues
    assert train_main(argv) == 0
    saved = json.loads((run / "result.json").read_text())
    assert saved["finished"] and saved["resumed_at"] == [1]
    assert line.split("fingerprint ")[1][:12] != saved["data_fingerprint"][:12] == line.split("checkpoint's ")[1][:12]


def test_the_fingerprint_tells_tasks_apart_by_contents_only():
    from cl_rnn.data.fingerprint import fingerprint

    tasks = synthetic_tasks(num_tasks=2)
    assert fingerprint(tasks) == fingerprint(synthetic_tasks(num_tasks=2))
    changed = synthetic_tasks(num_tasks=2)
    changed[1].x_test[0, 0, 0] += 1  # one byte of one test clip
    assert fingerprint(changed) != fingerprint(tasks)


def test_given_tasks_that_differ_are_refused_too_and_the_same_ones_resume_bitwise(tmp_path):
    from cl_rnn.data.fingerprint import fingerprint

    tasks, others = synthetic_tasks(num_tasks=3), synthetic_tasks(num_tasks=3, seed=1)
    config = small_config(tmp_path, num_tasks=3, n_iter=10)

    def stop_after_task_0(task: int, metrics: dict) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt, match="keeps its checkpoint after task 0"):
        train(config, report=stop_after_task_0, tasks=tasks)
    with pytest.raises(checkpoint.CheckpointMismatch, match="the tasks given to train"):
        train(config, tasks=others)
    resumed = train(config, tasks=tasks)
    whole = train(small_config(tmp_path / "whole", num_tasks=3, n_iter=10), tasks=tasks)
    np.testing.assert_array_equal(resumed.accuracy_matrix, whole.accuracy_matrix)
    assert resumed.data_fingerprint == whole.data_fingerprint == fingerprint(tasks)


def test_a_population_checkpoint_refuses_other_data(tmp_path):
    from cl_rnn.population import train_population

    tasks, others = synthetic_tasks(num_tasks=3), synthetic_tasks(num_tasks=3, seed=1)
    configs = [small_config(tmp_path, num_tasks=3, n_iter=10, random_seed=k, out_dir=str(tmp_path / f"m{k}"))
               for k in range(2)]
    saved = tmp_path / "population.pt"

    def stop_after_task_0(member: int, task: int, metrics: dict) -> None:
        raise RuntimeError("stopped")

    with pytest.raises(RuntimeError, match="stopped"):
        train_population(configs, report=stop_after_task_0, tasks=tasks, checkpoint=saved)
    with pytest.raises(checkpoint.CheckpointMismatch, match=rf"not the data the checkpoint in {saved} was trained"):
        train_population(configs, tasks=others, checkpoint=saved)
    assert all(result.finished for result in train_population(configs, tasks=tasks, checkpoint=saved))


def test_the_same_data_by_another_path_continues(tmp_path, two_datasets, monkeypatch):
    """A run started with a relative --data continues from the line command.txt records (absolute), and
    from a moved copy of the file: the checkpoint compares the data's contents, not its path."""
    first, _ = two_datasets
    (tmp_path / "d.h5").symlink_to(first)
    run = tmp_path / "run"
    monkeypatch.chdir(tmp_path)
    killed_after_first_checkpoint(["--data=d.h5", f"--out_dir={run}", *FLAGS], run)
    recorded = (run / "command.txt").read_text()
    assert f"--data={tmp_path / 'd.h5'}" in recorded
    moved = tmp_path / "elsewhere.h5"
    moved.symlink_to(first)
    assert train_main([f"--data={moved}", f"--out_dir={run}", *FLAGS]) == 0
    assert json.loads((run / "result.json").read_text())["resumed_at"] == [1]
