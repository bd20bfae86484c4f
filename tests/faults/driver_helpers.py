"""Sweep drivers as a user starts them: `hpsearch run` in its own session (from any working folder),
killed with everything it started."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from hpsearch_fakes import subprocess_env
from ray_cluster import kill_session

from hpsearch import records
from hpsearch.trial import FINISHED

ENV = subprocess_env(FAKE_SECONDS_PER_TASK="1.0")  # fake trials of 2 tasks: 2 s each
# A sweep of fake trials, one at a time, so a kill lands mid-sweep.
FAKE_SWEEP = ["--method", "si", "--num-samples", "4", "--max-concurrent", "1", "--n-iter", "5",
              "--flag", "num_tasks=2", "--train", "hpsearch_fakes:train"]


def hpsearch(*args: str) -> list[str]:
    return [sys.executable, "-m", "hpsearch.cli", *args]


def run(argv: list[str], cwd: Path | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=ENV, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          start_new_session=True)


def start(argv: list[str], log: Path, cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen(argv, env=ENV, cwd=cwd, stdout=log.open("a"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_for(condition, what: str, driver: subprocess.Popen | None = None, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        assert driver is None or driver.poll() is None, f"the driver ended before {what}"
        time.sleep(0.1)
    return value


def finished_rows(sweep_dir: Path) -> dict:
    try:
        rows = records.read_rows(sweep_dir / records.TRIALS_CSV)
    except Exception:  # noqa: BLE001 - a file being replaced: read again
        return {}
    return {tid: row for tid, row in rows.items() if row["state"] == FINISHED}


def kill(driver: subprocess.Popen) -> None:
    """SIGKILL the driver and every process of its session; wait until they are gone."""
    kill_session(driver)
    wait_for(lambda: subprocess.run(["pgrep", "-g", str(driver.pid)], capture_output=True).returncode != 0,
             "the killed driver's processes to exit", timeout=30)


def interrupted_sweep(argv: list[str], sweep_dir: Path, log: Path, cwd: Path | None = None) -> None:
    """Run ``argv`` until its first trial finished and Ray snapshotted that (every 2 s), then kill it."""
    driver = start(argv, log, cwd)
    try:
        wait_for(lambda: finished_rows(sweep_dir), "a finished trial", driver)
        time.sleep(2.5)
    finally:
        kill(driver)
    assert len(finished_rows(sweep_dir)) < 4, "the kill landed after the sweep ended"
