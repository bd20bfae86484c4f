"""A run stopped before its first checkpoint (Ctrl-C, a full disk) has nothing to continue from: it
removes exactly what it created, says in one line that nothing was kept, and the same command starts
again in the same folder (not ``<dir>_1``).  Ctrl-C before the run folder exists is one sensible line."""
from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from full_disk import fail_writes_of

from cl_rnn import checkpoint, population as population_module, results
from cl_rnn.cli import train_main
from cl_rnn.config import Config

pytestmark = pytest.mark.usefixtures("quiet_run_log")
FLAGS = ["--num_tasks=3", "--n_iter=20", "--val_set_size=10", "--loglevel_info"]
PROG = "train_split_audioset.py"
NOTHING_KEPT = "the run had saved no checkpoint and kept nothing"


def argv_for(data: Path, run: Path) -> list[str]:
    return [f"--data={data}", f"--out_dir={run}", *FLAGS]


def status_of(argv: list[str]) -> int:
    try:
        return train_main(argv)
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped train_main: a KeyboardInterrupt traceback")


def interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def one_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def the_rerun_lands_in_the_same_folder(data: Path, run: Path, tmp_path: Path) -> None:
    assert train_main(argv_for(data, run)) == 0
    assert json.loads((run / "result.json").read_text())["finished"] and not Path(f"{run}_1").exists()
    assert train_main(argv_for(data, tmp_path / "whole")) == 0
    np.testing.assert_array_equal(np.loadtxt(run / "accuracy_matrix.csv", delimiter=",", skiprows=1),
                                  np.loadtxt(tmp_path / "whole" / "accuracy_matrix.csv", delimiter=",", skiprows=1))


def test_ctrl_c_while_loading_the_data_is_one_sensible_line(tmp_path, tiny_dataset_path, capsys, monkeypatch):
    monkeypatch.setattr(population_module, "run_tasks", interrupt)
    assert status_of(argv_for(tiny_dataset_path, tmp_path / "run")) == 130
    assert one_line(capsys) == f"{PROG}: interrupted; {NOTHING_KEPT}: rerun the same command to start again"
    assert not (tmp_path / "run").exists()


def test_ctrl_c_before_the_run_folder_exists_is_one_sensible_line(tmp_path, tiny_dataset_path, capsys,
                                                                    monkeypatch):
    monkeypatch.setattr(checkpoint, "resumable", interrupt)
    assert status_of(argv_for(tiny_dataset_path, tmp_path / "run")) == 130
    assert one_line(capsys) == (f"{PROG}: interrupted before the run started; nothing was kept: "
                                "rerun the same command to start it")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("name", ["result.json", "accuracy_matrix.csv"])
def test_a_full_disk_after_task_0_before_its_checkpoint_keeps_nothing_and_the_rerun_lands_in_the_folder(
        tmp_path, tiny_dataset_path, capsys, monkeypatch, name):
    run = tmp_path / "run"
    fail_writes_of(monkeypatch, name)
    assert train_main(argv_for(tiny_dataset_path, run)) == 1
    line = one_line(capsys)
    assert not run.exists()
    assert line == (f"{PROG}: error: {run / name}: cannot write (No space left on device); "
                    f"{NOTHING_KEPT}: once it can be written, rerun the same command to start again")
    monkeypatch.undo()
    the_rerun_lands_in_the_same_folder(tiny_dataset_path, run, tmp_path)


def test_a_full_disk_writing_the_first_checkpoint_keeps_nothing(tmp_path, tiny_dataset_path, capsys, monkeypatch):
    run = tmp_path / "run"
    real_save = torch.save

    def save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", save)
    assert train_main(argv_for(tiny_dataset_path, run)) == 1
    line = one_line(capsys)
    assert not run.exists()  # nor its checkpoints/ folder or a temporary file
    assert line == (f"{PROG}: error: {checkpoint.path_in(run)}: cannot write the checkpoint (No space left on "
                    f"device); {NOTHING_KEPT}: once it can be written, rerun the same command to start again")
    monkeypatch.setattr(torch, "save", real_save)
    the_rerun_lands_in_the_same_folder(tiny_dataset_path, run, tmp_path)


def test_ctrl_c_between_the_results_and_the_first_checkpoint_keeps_nothing(tmp_path, tiny_dataset_path, capsys,
                                                                             monkeypatch):
    run = tmp_path / "run"
    monkeypatch.setattr(torch, "save", interrupt)  # results of task 0 written, its checkpoint half made
    assert status_of(argv_for(tiny_dataset_path, run)) == 130
    line = one_line(capsys)
    assert not run.exists()
    assert line == f"{PROG}: interrupted; {NOTHING_KEPT}: rerun the same command to start again"
    monkeypatch.undo()
    the_rerun_lands_in_the_same_folder(tiny_dataset_path, run, tmp_path)


def test_a_full_disk_writing_command_txt_leaves_nothing(tmp_path, tiny_dataset_path, capsys, monkeypatch):
    run = tmp_path / "new" / "run"
    fail_writes_of(monkeypatch, "command.txt")
    assert train_main(argv_for(tiny_dataset_path, run)) == 1
    assert "cannot write the run folder (No space left on device)" in one_line(capsys)
    assert not (tmp_path / "new").exists()  # config.json and the folders made for it are gone
    monkeypatch.undo()
    the_rerun_lands_in_the_same_folder(tiny_dataset_path, run, tmp_path)


def test_files_someone_else_put_in_the_folder_stay_and_the_line_says_so(tmp_path, tiny_dataset_path, capsys,
                                                                         monkeypatch):
    run = tmp_path / "run"

    def someone_writes_then_ctrl_c(self, *args, **kwargs):
        (run / "notes.txt").write_text("mine")
        raise KeyboardInterrupt

    monkeypatch.setattr(population_module._Population, "_optimise", someone_writes_then_ctrl_c)
    assert status_of(argv_for(tiny_dataset_path, run)) == 130
    assert one_line(capsys) == (f"{PROG}: interrupted; the run had saved no checkpoint; {run} keeps what could "
                                "not be removed: rerun the same command to start again in a new folder")
    assert [p.name for p in run.iterdir()] == ["notes.txt"] and (run / "notes.txt").read_text() == "mine"


def test_discard_removes_exactly_what_the_run_folder_created(tmp_path):
    before = tmp_path / "before"
    before.mkdir()
    config = Config(out_dir=str(before / "a" / "run"), num_tasks=2)
    folder = results.RunFolder(config)
    (before / "theirs.txt").write_text("theirs")
    folder.record(folder.path / "checkpoints" / "checkpoint.pt")
    (folder.path / "checkpoints").mkdir()
    assert folder.discard()
    assert [p.name for p in before.iterdir()] == ["theirs.txt"]


def test_ctrl_c_while_the_run_folder_is_made_leaves_nothing(tmp_path, tiny_dataset_path, capsys, monkeypatch):
    run = tmp_path / "new" / "run"
    monkeypatch.setattr(results, "command_line", interrupt)  # config.json written, command.txt not yet
    assert status_of(argv_for(tiny_dataset_path, run)) == 130
    line = one_line(capsys)
    assert not (tmp_path / "new").exists()
    assert line == f"{PROG}: interrupted before the run started; nothing was kept: rerun the same command to start it"
