"""A sweep folder is self-contained: resumed from wherever it lies now (moved, copied, or named by a
relative path from another working folder), it never reads or writes the place it came from."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from driver_helpers import FAKE_SWEEP, finished_rows, hpsearch, interrupted_sweep, run

from hpsearch import sweep


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, p.stat().st_size) for p in folder.rglob("*")}


def assert_complete(sweep_dir: Path, rows: list[dict]) -> None:
    assert len(rows) == 4 and len(finished_rows(sweep_dir)) == 4
    assert all((sweep_dir / row["run_folder"] / "result.json").is_file() for row in rows)


def interrupted_sweep_k(tmp_path: Path) -> Path:
    """The sweep ``tmp_path/a/k``, its driver killed after its first finished trial."""
    original = tmp_path / "a" / "k"
    interrupted_sweep(hpsearch("run", *FAKE_SWEEP, "--results", str(original.parent), "--name", "k"), original,
                      tmp_path / "driver.log")
    return original


def test_a_copied_sweep_resumes_in_the_copy_and_leaves_the_original_untouched(tmp_path, ray_local):
    original = interrupted_sweep_k(tmp_path)
    copy = tmp_path / "b" / "k"
    shutil.copytree(original, copy)
    before = snapshot(original)
    rows = sweep.resume(str(copy.parent), "k")
    assert snapshot(original) == before
    assert_complete(copy, rows)


def test_a_moved_sweep_resumes_where_it_lies_now(tmp_path, ray_local):
    original = interrupted_sweep_k(tmp_path)
    moved = tmp_path / "elsewhere" / "k"
    shutil.move(original, moved)
    rows = sweep.resume(str(moved.parent), "k")
    assert not original.exists()
    assert_complete(moved, rows)


def test_run_and_resume_with_relative_paths_from_other_working_folders(tmp_path, tiny_dataset_path):
    shutil.copy(tiny_dataset_path, tmp_path / "d.h5")
    one, two = tmp_path / "one", tmp_path / "two" / "deeper"
    one.mkdir()
    two.mkdir(parents=True)
    interrupted_sweep(hpsearch("run", *FAKE_SWEEP, "--flag", "val_set_size=50", "--data", "../d.h5", "--results",
                               "../res", "--name", "r"),
                      tmp_path / "res" / "r", tmp_path / "driver.log", cwd=one)
    done = run(hpsearch("run", "--resume", "r", "--results", "../../res"), cwd=two)
    assert done.returncode == 0, done.stdout + done.stderr
    sweep_dir = tmp_path / "res" / "r"
    assert len(finished_rows(sweep_dir)) == 4
    saved = json.loads((sweep_dir / "sweep.json").read_text())
    assert saved["results"] == str(tmp_path / "res") and saved["data"] == str(tmp_path / "d.h5")
    runs = list(sweep_dir.glob("trial_*/run/config.json"))
    assert len(runs) == 4 and {json.loads(p.read_text())["data"] for p in runs} == {str(tmp_path / "d.h5")}
    assert sorted(os.listdir(tmp_path)) == ["d.h5", "driver.log", "one", "res", "two"]
    assert not any(one.iterdir()) and not any(two.iterdir())
