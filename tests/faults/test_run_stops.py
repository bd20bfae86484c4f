"""A run stopped by a full disk or by Ctrl-C says so in one line: what its folder keeps and how to continue."""
from __future__ import annotations

import errno
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
import torch

from full_disk import fail_writes_of

from cl_rnn import checkpoint, population as population_module
from cl_rnn.cli import train_main

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("quiet_run_log")
FLAGS = ["--num_tasks=3", "--val_set_size=10", "--loglevel_info"]


def argv_for(data: Path, run: Path, n_iter: int = 20) -> list[str]:
    return [f"--data={data}", f"--out_dir={run}", f"--n_iter={n_iter}", *FLAGS]


def status_of(argv: list[str]) -> int:
    try:
        return train_main(argv)
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped train_main: a KeyboardInterrupt traceback")


def matrix_of(run: Path) -> np.ndarray:
    return np.loadtxt(run / "accuracy_matrix.csv", delimiter=",", skiprows=1)


def save_on_a_full_disk(real_save):
    """torch.save as it fails on a full disk: the write's OSError, then torch's RuntimeError while handling it."""
    calls = {"n": 0}

    def save(obj, f, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] < 2:
            return real_save(obj, f, *args, **kwargs)
        f.write(b"PK\x03\x04 half a zip")
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 768 vs 662") from None
    return save


def test_a_full_disk_while_writing_a_checkpoint_is_one_line_and_the_rerun_is_identical(
        tmp_path, tiny_dataset_path, capsys, monkeypatch):
    run = tmp_path / "run"
    monkeypatch.setattr(torch, "save", save_on_a_full_disk(torch.save))  # task 1's checkpoint fails
    assert train_main(argv_for(tiny_dataset_path, run)) == 1
    path = checkpoint.path_in(run)
    assert capsys.readouterr().err.strip().splitlines() == [
        f"train_split_audioset.py: error: {path}: cannot write the checkpoint (No space left on device); "
        f"{run} keeps its checkpoint after task 0: once it can be written, rerun the same command to continue"]
    monkeypatch.undo()
    assert checkpoint.load(path).task == 0 and not list(run.rglob("*.tmp"))
    assert train_main(argv_for(tiny_dataset_path, run)) == 0
    assert json.loads((run / "result.json").read_text())["resumed_at"] == [1]
    assert train_main(argv_for(tiny_dataset_path, tmp_path / "whole")) == 0
    np.testing.assert_array_equal(matrix_of(run), matrix_of(tmp_path / "whole"))


@pytest.fixture
def small_disk(tmp_path):
    """A real filesystem of 1 MiB (a tmpfs; needs root), unmounted afterwards."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a small tmpfs needs root")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def test_a_real_full_disk_stops_the_run_in_one_line_and_the_rerun_after_freeing_space_is_identical(
        tmp_path, tiny_dataset_path, small_disk, capsys):
    filler = small_disk / "filler"
    filler.write_bytes(b"x" * (1024 - 200) * 1024)  # room for the first checkpoint (~110 KB), not for two
    run = small_disk / "run"
    assert train_main(argv_for(tiny_dataset_path, run)) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"train_split_audioset.py: error: {run}/") and "(No space left on device); " in line
    assert line.endswith(f"{run} keeps its checkpoint after task 0: once it can be written, rerun the same "
                         "command to continue"), line
    filler.unlink()
    assert train_main(argv_for(tiny_dataset_path, run)) == 0
    assert train_main(argv_for(tiny_dataset_path, tmp_path / "whole")) == 0
    np.testing.assert_array_equal(matrix_of(run), matrix_of(tmp_path / "whole"))


def test_a_full_disk_while_writing_the_results_names_the_file(tmp_path, tiny_dataset_path, capsys, monkeypatch):
    run = tmp_path / "run"
    fail_writes_of(monkeypatch, "result.json")
    assert train_main(argv_for(tiny_dataset_path, run)) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        f"train_split_audioset.py: error: {run / 'result.json'}: cannot write (No space left on device); "
        "the run had saved no checkpoint and kept nothing: once it can be written, rerun the same command to start "
        "again"]
    assert not run.exists()  # task 0 had finished, but without a checkpoint there is nothing to continue


def test_ctrl_c_of_a_run_is_one_line_exit_130_and_the_same_command_continues(tmp_path, tiny_dataset_path):
    run = tmp_path / "run"
    command = [sys.executable, str(REPO / "train_split_audioset.py"), *argv_for(tiny_dataset_path, run, 400)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not checkpoint.path_in(run).exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130 and "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    kept = re.fullmatch(rf"train_split_audioset.py: interrupted; {re.escape(str(run))} keeps its checkpoint "
                        r"after task (\d): rerun the same command to continue", last)
    assert kept, last
    assert checkpoint.load(checkpoint.path_in(run)).task == int(kept.group(1))
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads((run / "result.json").read_text())["resumed_at"] == [int(kept.group(1)) + 1]


def test_ctrl_c_before_the_first_task_ended_leaves_no_folder(tmp_path, tiny_dataset_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(population_module._Population, "_optimise", interrupted)
    assert status_of(argv_for(tiny_dataset_path, tmp_path / "run")) == 130
    assert capsys.readouterr().err.strip().splitlines() == [
        "train_split_audioset.py: interrupted; the run had saved no checkpoint and kept nothing: rerun the same "
        "command to start again"]
    assert not (tmp_path / "run").exists()  # so the rerun lands in the same folder


def test_ctrl_c_of_a_run_without_out_dir_names_the_folder_to_continue_in(tmp_path, tiny_dataset_path, capsys,
                                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)

    def stop_after_task_0(self, t, speed, real=population_module._Population._record):
        real(self, t, speed)
        raise KeyboardInterrupt

    monkeypatch.setattr(population_module._Population, "_record", stop_after_task_0)
    assert status_of([f"--data={tiny_dataset_path}", "--n_iter=5", *FLAGS]) == 130
    (folder,) = (Path("results") / "runs").iterdir()
    assert capsys.readouterr().err.strip().splitlines() == [
        f"train_split_audioset.py: interrupted; {folder} keeps its checkpoint after task 0: "
        f"rerun the same command with --out_dir={folder} to continue"]
