"""The command line ends without the interpreter's teardown (``cli.exit_fast``): nothing it printed,
wrote or started is lost, and its exit status is the run's."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def script(*flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "train_split_audioset.py"), *flags],
                          capture_output=True, text=True, timeout=300)


def test_a_finished_run_prints_its_summary_into_a_pipe_and_exits_0(tiny_dataset_path, tmp_path):
    done = script(f"--data={tiny_dataset_path}", "--num_tasks=2", "--multi_head", "--n_iter=5", "--val_set_size=20",
                  "--loglevel_info", f"--out_dir={tmp_path / 'run'}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("\n") and "finished" in done.stdout.splitlines()[-1]
    assert "task 1:" in done.stderr  # the log's last lines, flushed too
    assert len(json.loads((tmp_path / "run" / "result.json").read_text())["final"]) == 2


def test_a_failed_run_exits_1_with_its_one_line(tmp_path):
    done = script(f"--data={tmp_path / 'missing.h5'}", "--num_tasks=2", f"--out_dir={tmp_path / 'run'}")
    assert done.returncode == 1 and done.stdout == ""
    assert [line for line in done.stderr.splitlines() if "error" in line] == [
        f"train_split_audioset.py: error: {tmp_path / 'missing.h5'}: no such file"]


def test_the_exit_waits_for_threads_that_are_still_working():
    code = ("import threading, time\n"
            "from cl_rnn.cli import exit_fast\n"
            "threading.Thread(target=lambda: (time.sleep(0.5), print('thread done'))).start()\n"
            "print('main', end=' ')\n"
            "exit_fast(3)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert done.returncode == 3 and done.stdout == "main thread done\n"
