"""The sweep driver SIGKILLed three times and resumed each time: nothing finished lost, nothing counted twice."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from driver_helpers import finished_rows
from ray_cluster import IP, cluster_env, free_port, start_head, stop

from hpsearch import journal, records
from hpsearch.trial import FINISHED

NUM_SAMPLES = 8
KILLS = 3
# Ray snapshots the experiment every 2 s (TUNE_GLOBAL_CHECKPOINT_S in hpsearch.ray_env): the kills
# land right after a trial ended (before any snapshot knows it), 1.2 s and 2.4 s after.
DELAYS_S = (0.0, 1.2, 2.4)
ENV = cluster_env(FAKE_SECONDS_PER_TASK="1.0")  # 2 s trials


def hpsearch(*args: str) -> list[str]:
    return [sys.executable, "-m", "hpsearch.cli", "run", *args]


def result_stamp(sweep_dir: Path, row: dict) -> tuple[int, list]:
    path = sweep_dir / row["run_folder"] / "result.json"
    return path.stat().st_mtime_ns, json.loads(path.read_text())["final"]


def run_until_killed(argv: list[str], sweep_dir: Path, log: Path, first_seen: dict, delay: float) -> None:
    """Start the driver in its own session; ``delay`` s after one more trial finished, SIGKILL the
    driver and every process it started.  ``first_seen``: trial -> (time seen finished, result stamp)."""
    wanted = len(finished_rows(sweep_dir)) + 1
    driver = subprocess.Popen(argv, env=ENV, stdout=log.open("a"), stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len(seen := finished_rows(sweep_dir)) < wanted:
            assert time.monotonic() < deadline and driver.poll() is None, log.read_text()[-3000:]
            for tid, row in seen.items():
                first_seen.setdefault(tid, (time.monotonic(), result_stamp(sweep_dir, row)))
            time.sleep(0.1)
        for tid, row in seen.items():
            first_seen.setdefault(tid, (time.monotonic(), result_stamp(sweep_dir, row)))
        time.sleep(delay)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
    deadline = time.monotonic() + 20
    while subprocess.run(["pgrep", "-g", str(driver.pid)], capture_output=True).returncode == 0:
        assert time.monotonic() < deadline, "the killed driver's processes did not exit"
        time.sleep(0.2)


def test_three_driver_kills_lose_no_finished_trial_and_count_none_twice(tmp_path):
    # The drivers join one long-lived Ray node (as on a cluster): killing a driver kills its trials,
    # not the node, and each resume skips starting Ray afresh.
    port = free_port()
    head = start_head(port, tmp_path / "head.log", ENV)
    try:
        kill_and_resume(tmp_path, f"{IP}:{port}")
    finally:
        stop(head)


def kill_and_resume(tmp_path: Path, address: str) -> None:
    sweep_dir, log = tmp_path / "k", tmp_path / "driver.log"
    start = hpsearch("--method", "si", "--num-samples", str(NUM_SAMPLES), "--n-iter", "5", "--flag", "num_tasks=2",
                     "--train", "hpsearch_fakes:train", "--results", str(tmp_path), "--name", "k",
                     "--address", address)
    resume = hpsearch("--resume", "k", "--results", str(tmp_path), "--address", address)
    kept: dict = {}  # every trial ever seen finished: result file and time stamp
    for kill in range(KILLS):
        run_until_killed(start if kill == 0 else resume, sweep_dir, log, kept, DELAYS_S[kill])
        rows = finished_rows(sweep_dir)
        assert len(rows) < NUM_SAMPLES and set(kept) <= set(rows)  # the kill landed mid-sweep; nothing lost

    done = subprocess.run(resume, env=ENV, capture_output=True, text=True, timeout=180, start_new_session=True)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = records.read_rows(sweep_dir / records.TRIALS_CSV)
    assert len(rows) == NUM_SAMPLES and all(row["state"] == FINISHED for row in rows.values())
    # Finished trials were kept as they were: never trained again, the same result file (a trial that
    # ended after the last snapshot is picked up again and reports its saved result).
    assert {tid: (stamp, result_stamp(sweep_dir, rows[tid])) for tid, (_, stamp) in kept.items()} == {
        tid: (stamp, stamp) for tid, (_, stamp) in kept.items()}
    # The searcher kept its history across the kills: a cold restart of the seeded sampler repeats lrs.
    assert len({row["lr"] for row in rows.values()}) == NUM_SAMPLES
    study = journal.open_study(sweep_dir / journal.JOURNAL, "k")
    mirrored = [t.user_attrs[journal.RAY_ID] for t in study.trials]
    assert sorted(mirrored) == sorted(rows)  # one Optuna trial per sweep trial: none twice, none lost
    assert len(list(sweep_dir.glob("trial_*/run/result.json"))) == NUM_SAMPLES
