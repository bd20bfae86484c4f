"""`hpsearch run` refuses, in one line and before Ray starts, what every trial would refuse (the data, the
flags) and a sweep name that would put the sweep folder outside --results."""
from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
from hpsearch_fakes import TINY

from hpsearch.cli import main

FAKE = ["--num-samples", "1", "--n-iter", "5", "--train", "hpsearch_fakes:train"]


def refused(argv: list[str], capsys: pytest.CaptureFixture, status: int = 2) -> str:
    assert main(["run", *argv]) == status
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out + err, out + err
    return lines[0]


def float32_copy(source, target):
    shutil.copy(source, target)
    with h5py.File(target, "r+") as f:
        x = f["x"][()].astype(np.float32)
        del f["x"]
        f.create_dataset("x", data=x)
    return target


@pytest.mark.parametrize("case", ["float32 x", "11 tasks of 10", "coreset larger than a task"])
def test_data_every_trial_would_refuse_is_refused_before_any_trial(case, tmp_path, tiny_dataset_path, capsys):
    flags = [f"--flag={name}={value}" for name, value in TINY.items() if name != "num_tasks"]
    data, method = tiny_dataset_path, "finetune"
    if case == "float32 x":
        data = float32_copy(tiny_dataset_path, tmp_path / "float32.h5")
        expected = "x has dtype float32, expected uint8"
    elif case == "11 tasks of 10":
        flags.append("--flag=num_tasks=11")
        expected = "11 tasks of 10 classes need 110 classes, the dataset has 100"
    else:
        flags.append("--flag=coreset_size=1000")
        method, expected = "coresets", "--coreset_size: 1000 is more than the 190 training samples of task 0"
    line = refused(["--method", method, "--num-samples", "1", "--n-iter", "5", *flags, "--data", str(data),
                    "--results", str(tmp_path), "--name", "s"], capsys)
    assert line.startswith("hpsearch run: ") and expected in line, line
    assert not (tmp_path / "s").exists()  # nothing started, nothing written


@pytest.mark.parametrize("name", ["../../x", "/ABS/x", "a/b", "..", "."])
def test_a_sweep_name_that_is_not_a_plain_folder_name_is_refused(name, tmp_path, capsys):
    results = tmp_path / "one" / "two"
    name = name.replace("/ABS", str(tmp_path))
    line = refused(["--method", "finetune", *FAKE, "--flag=num_tasks=2", "--results", str(results),
                    "--name", name], capsys)
    assert line == (f"hpsearch run: --name {name}: a sweep name must be a plain folder name (no '/' or '..'); "
                    "use --results for where it goes")
    assert sorted(p.name for p in tmp_path.rglob("*")) == []  # nothing written anywhere


def test_a_resume_name_that_is_not_a_plain_folder_name_is_refused(tmp_path, capsys):
    (tmp_path / "outside").mkdir()
    line = refused(["--resume", "../outside", "--results", str(tmp_path / "results")], capsys)
    assert line.startswith("hpsearch run: --resume ../outside: a sweep name must be a plain folder name")
