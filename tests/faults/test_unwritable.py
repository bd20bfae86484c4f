"""A results folder that cannot be written is one clear line before any training starts."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cl_rnn.cli import train_main
from hpsearch.cli import main as hpsearch_main

REPO = Path(__file__).resolve().parents[2]


def unwritable(tmp_path: Path, how: str) -> tuple[Path, str]:
    """A folder path that cannot be created or written, and the reason the OS gives."""
    if how == "file_in_the_way":
        (tmp_path / "blocker").write_text("a file, not a folder")
        return tmp_path / "blocker" / "results", "Not a directory"
    if os.geteuid() == 0:  # root ignores permission bits: use a filesystem that refuses new folders
        return Path("/sys/cl_rnn_results"), "Operation not permitted"
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    return locked / "results", "Permission denied"


@pytest.mark.parametrize("how", ["file_in_the_way", "read_only"])
def test_train_refuses_an_unwritable_out_dir_in_one_line(tmp_path, capsys, how):
    folder, reason = unwritable(tmp_path, how)
    # --data names a file that does not exist: the folder is checked first, before any data is read
    assert train_main([f"--out_dir={folder / 'run'}", f"--data={tmp_path / 'none.h5'}", "--num_tasks=2"]) == 1
    assert capsys.readouterr().err.strip().splitlines() == [
        f"train_split_audioset.py: error: --out_dir {folder / 'run'}: cannot write the run folder ({reason})"]


def test_the_script_says_so_without_a_traceback(tmp_path):
    folder, reason = unwritable(tmp_path, "file_in_the_way")
    done = subprocess.run([sys.executable, str(REPO / "train_split_audioset.py"), f"--out_dir={folder}",
                           "--num_tasks=2"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"train_split_audioset.py: error: --out_dir {folder}: cannot write the run folder ({reason})"]


@pytest.mark.parametrize("how", ["file_in_the_way", "read_only"])
def test_a_sweep_refuses_an_unwritable_results_folder_before_ray_starts(tmp_path, capsys, how):
    folder, reason = unwritable(tmp_path, how)
    assert hpsearch_main(["run", "--method", "si", "--results", str(folder), "--name", "s"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"hpsearch run: --results {folder}: cannot create the sweep folder ({reason})"]
