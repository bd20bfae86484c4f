"""A run refused after its folder was made (a bad data file) leaves nothing behind: the corrected
command writes to the same folder, not to ``<dir>_1``; a folder that held anything before is kept."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from cl_rnn.cli import train_main

pytestmark = pytest.mark.usefixtures("quiet_run_log")
TINY_RUN = ["--num_tasks=2", "--n_iter=5", "--val_set_size=10", "--loglevel_info"]


def refused_for_bad_data(tmp_path: Path, out_dir: Path) -> None:
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not hdf5")
    assert train_main([f"--data={bad}", f"--out_dir={out_dir}", *TINY_RUN]) == 1


def test_the_corrected_command_lands_in_the_same_folder(tmp_path, tiny_dataset_path, capsys):
    run = tmp_path / "new" / "deeper" / "run"
    refused_for_bad_data(tmp_path, run)
    assert "not a readable HDF5 file" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()  # the folders the refused run made are gone, parents too
    assert train_main([f"--data={tiny_dataset_path}", f"--out_dir={run}", *TINY_RUN]) == 0
    assert json.loads((run / "result.json").read_text())["finished"] and not Path(f"{run}_1").exists()


def test_an_empty_folder_that_existed_before_is_kept_empty(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    refused_for_bad_data(tmp_path, run)
    assert run.is_dir() and not any(run.iterdir())


def test_a_folder_with_a_run_in_it_is_untouched(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "result.json").write_text("{}")
    refused_for_bad_data(tmp_path, run)
    assert [p.name for p in run.iterdir()] == ["result.json"] and not Path(f"{run}_1").exists()


@pytest.mark.parametrize("flags", [["--num_tasks=11"], ["--use_replay", "--coreset_size=5000"]])
def test_flags_that_contradict_the_data_leave_no_folder(tmp_path, tiny_dataset_path, flags):
    run = tmp_path / "run"
    argv = [f"--data={tiny_dataset_path}", f"--out_dir={run}", "--n_iter=5", "--val_set_size=10", *flags]
    assert train_main(argv) in (1, 2)
    assert not run.exists()
