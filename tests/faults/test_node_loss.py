"""A worker node of a two-node Ray cluster dies mid-sweep: its trial runs again on the other node."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ray_cluster import IP, alive_nodes, cluster_env, free_port, kill_session, start_head, start_worker, stop

from hpsearch import records
from hpsearch.trial import FINISHED

pytestmark = pytest.mark.skipif(os.environ.get("CL_RNN_SKIP_CLUSTER_TEST") == "1",
                                reason="CL_RNN_SKIP_CLUSTER_TEST=1")
# 6 s trials: the worker node's first actor (seconds of imports) starts before the head's is free again.
ENV = cluster_env(FAKE_SECONDS_PER_TASK="3.0")
NUM_SAMPLES = 4


def trial_on_node(sweep_dir: Path, session: int) -> Path | None:
    """A trial folder whose trial started in the node's session less than 2 s ago.

    Only a fresh start leaves a safe margin: a trial that is about to end could report its result
    between this check and the kill, and then no retry would ever run.
    """
    for session_file in sweep_dir.glob("trial_*/session"):
        trial = session_file.parent
        try:
            fresh = time.time() - session_file.stat().st_mtime < 2.0
            mine = session_file.read_text() == str(session)
        except OSError:
            continue
        if fresh and mine and not (trial / "run" / "result.json").exists():
            return trial
    return None


def finished(sweep_dir: Path) -> dict:
    try:
        rows = records.read_rows(sweep_dir / records.TRIALS_CSV)
    except Exception:  # noqa: BLE001 - being replaced: read again later
        return {}
    return {tid: row for tid, row in rows.items() if row["state"] == FINISHED}


def test_a_lost_worker_node_loses_no_trial(tmp_path):
    port = free_port()
    address = f"{IP}:{port}"
    head = start_head(port, tmp_path / "head.log", ENV)
    worker = driver = None
    try:
        worker = start_worker(address, tmp_path / "worker.log", ENV)
        assert len(alive_nodes(address, 2, ENV)) == 2, (tmp_path / "worker.log").read_text()
        driver = subprocess.Popen(
            [sys.executable, "-m", "hpsearch.cli", "run", "--method", "si", "--num-samples", str(NUM_SAMPLES),
             "--n-iter", "5", "--flag", "num_tasks=2", "--train", "fault_trainers:train_telling_session",
             "--address", address, "--results", str(tmp_path), "--name", "lost"],
            env=ENV, stdout=(tmp_path / "driver.log").open("w"), stderr=subprocess.STDOUT)
        sweep_dir = tmp_path / "lost"
        deadline = time.monotonic() + 120
        # once a trial has finished, and another one runs on the worker node
        while not finished(sweep_dir) or (victim := trial_on_node(sweep_dir, worker.pid)) is None:
            assert time.monotonic() < deadline and driver.poll() is None, "no trial ran on the worker node"
            time.sleep(0.1)
        before = finished(sweep_dir)
        kill_session(worker)  # the whole node at once, like a machine that goes away
        assert driver.wait(timeout=240) == 0, (tmp_path / "driver.log").read_text()
        rows = records.read_rows(sweep_dir / records.TRIALS_CSV)
        assert len(rows) == NUM_SAMPLES and all(row["state"] == FINISHED for row in rows.values())
        assert before and {tid: rows[tid]["final_mean"] for tid in before} == {
            tid: row["final_mean"] for tid, row in before.items()}
        rerun = rows[victim.name.removeprefix("trial_")]
        assert (victim / "session").read_text() == str(head.pid) and rerun["state"] == FINISHED
    finally:
        if driver is not None and driver.poll() is None:
            driver.kill()
        if worker is not None:
            stop(worker)
        stop(head)
