"""The sweep driver SIGKILLed three times and resumed each time: nothing finished lost, nothing counted twice."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hpsearch_fakes import subprocess_env

from hpsearch import journal, records
from hpsearch.trial import FINISHED

NUM_SAMPLES = 8
KILLS = 3
SNAPSHOT_S = 2.5  # Ray snapshots the experiment every 2 s (TUNE_GLOBAL_CHECKPOINT_S in hpsearch.ray_adapter)
ENV = subprocess_env(FAKE_SECONDS_PER_TASK="1.0")  # 3 s trials: each outlives a snapshot period


def hpsearch(*args: str) -> list[str]:
    return [sys.executable, "-m", "hpsearch.cli", "run", *args]


def finished_rows(sweep_dir: Path) -> dict:
    try:
        rows = records.read_rows(sweep_dir / records.TRIALS_CSV)
    except Exception:  # noqa: BLE001 - a file being replaced: read again
        return {}
    return {tid: row for tid, row in rows.items() if row["state"] == FINISHED}


def result_stamp(sweep_dir: Path, row: dict) -> tuple[float, str]:
    path = sweep_dir / row["run_folder"] / "result.json"
    return path.stat().st_mtime_ns, json.loads(path.read_text())["final"]


def run_until_killed(argv: list[str], sweep_dir: Path, wanted: int, log: Path) -> dict:
    """Start the driver in its own session; once ``wanted`` trials finished and Ray snapshotted them,
    SIGKILL the driver and every Ray process it started.  Returns the finished rows seen at the kill."""
    driver = subprocess.Popen(argv, env=ENV, stdout=log.open("a"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len(seen := finished_rows(sweep_dir)) < wanted:
            assert time.monotonic() < deadline and driver.poll() is None, log.read_text()[-3000:]
            time.sleep(0.1)
        time.sleep(SNAPSHOT_S)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    deadline = time.monotonic() + 20
    while subprocess.run(["pgrep", "-g", str(driver.pid)], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, "the killed sweep's processes did not exit"
        time.sleep(0.2)
    return seen


def test_three_driver_kills_lose_no_finished_trial_and_count_none_twice(tmp_path):
    sweep_dir, log = tmp_path / "k", tmp_path / "driver.log"
    start = hpsearch("--method", "si", "--num-samples", str(NUM_SAMPLES), "--max-concurrent", "2", "--n-iter", "5",
                     "--flag", "num_tasks=3", "--train", "hpsearch_fakes:train", "--results", str(tmp_path),
                     "--name", "k")
    resume = hpsearch("--resume", "k", "--results", str(tmp_path))
    stamps: dict = {}
    for kill in range(KILLS):
        seen = run_until_killed(start if kill == 0 else resume, sweep_dir, 2 * (kill + 1), log)
        assert len(seen) < NUM_SAMPLES
        assert set(stamps) <= set(seen)  # every trial finished before an earlier kill is still there
        stamps.update({tid: result_stamp(sweep_dir, row) for tid, row in seen.items() if tid not in stamps})

    done = subprocess.run(resume, env=ENV, capture_output=True, text=True, timeout=180, start_new_session=True)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = records.read_rows(sweep_dir / records.TRIALS_CSV)
    assert len(rows) == NUM_SAMPLES and all(row["state"] == FINISHED for row in rows.values())
    # Finished trials were kept as they were: never run again, same result file.
    assert {tid: result_stamp(sweep_dir, rows[tid]) for tid in stamps} == stamps
    # The searcher kept its history across the kills: a cold restart of the seeded sampler repeats lrs.
    assert len({row["lr"] for row in rows.values()}) == NUM_SAMPLES
    study = journal.open_study(sweep_dir / journal.JOURNAL, "k")
    mirrored = [t.user_attrs[journal.RAY_ID] for t in study.trials]
    assert sorted(mirrored) == sorted(rows)  # one Optuna trial per sweep trial: none twice, none lost
    assert len(list(sweep_dir.glob("trial_*/run/result.json"))) == NUM_SAMPLES
