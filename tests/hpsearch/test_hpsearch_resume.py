"""A sweep whose driver is SIGKILLed continues with `hpsearch run --resume NAME`."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hpsearch_fakes import TINY, subprocess_env

from hpsearch import journal, records
from hpsearch.trial import FINISHED

NUM_SAMPLES = 10
SMALL_NET = {"rnn_arch": "32", "batch_size": 64}  # every trial about a second: the kill lands mid-sweep


def hpsearch(*args: str) -> list[str]:
    return [sys.executable, "-m", "hpsearch.cli", *args]


def finished_rows(path: Path) -> dict:
    try:
        rows = records.read_rows(path)
    except Exception:  # noqa: BLE001 - a file being replaced: try again
        return {}
    return {tid: row for tid, row in rows.items() if row["state"] == FINISHED}


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def group_alive(pgid: int) -> bool:
    return subprocess.run(["pgrep", "-g", str(pgid)], capture_output=True).returncode == 0


def test_killed_sweep_resumes_keeping_finished_trials_and_history(tmp_path, tiny_dataset_path):
    env = subprocess_env()
    csv = tmp_path / "k" / records.TRIALS_CSV
    log = (tmp_path / "driver.log").open("w")
    driver = subprocess.Popen(
        hpsearch("run", "--method", "finetune", "--num-samples", str(NUM_SAMPLES), "--max-concurrent", "2",
                 "--n-iter", "200", "--data", str(tiny_dataset_path), "--results", str(tmp_path), "--name", "k",
                 *(f"--flag={name}={value}" for name, value in {**TINY, **SMALL_NET}.items())),
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: len(finished_rows(csv)) >= 4, 120, "4 finished trials")
    finally:
        os.killpg(driver.pid, signal.SIGKILL)  # the driver and every Ray process it started
        driver.wait()
        wait_for(lambda: not group_alive(driver.pid), 20, "the killed sweep's processes to exit")
    before = finished_rows(csv)
    assert len(before) < NUM_SAMPLES
    mtimes = {tid: (tmp_path / "k" / row["run_folder"] / "result.json").stat().st_mtime for tid, row in before.items()}

    resumed = subprocess.run(hpsearch("run", "--resume", "k", "--results", str(tmp_path)), env=env,
                             capture_output=True, text=True, timeout=180, start_new_session=True)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    after = records.read_rows(csv)
    assert len(after) == NUM_SAMPLES and all(row["state"] == FINISHED for row in after.values())
    assert set(before) <= set(after)
    # Trials that ended before Ray's last snapshot (every 2 s) are not run again.
    kept = [tid for tid, mtime in mtimes.items()
            if (tmp_path / "k" / after[tid]["run_folder"] / "result.json").stat().st_mtime == mtime]
    assert len(kept) >= len(before) - 2
    # The searcher kept its history: a cold restart of the seeded sampler would repeat earlier lrs.
    assert len({row["lr"] for row in after.values()}) == NUM_SAMPLES
    study = journal.open_study(tmp_path / "k" / journal.JOURNAL, "k")
    assert set(journal.mirrored_ids(study)) >= set(after)
    assert "best trial by final accuracy" in resumed.stdout
