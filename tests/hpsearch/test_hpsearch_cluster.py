"""A real two-node Ray cluster on localhost: `hpsearch run --address` spreads trials over both nodes.

Skip with CL_RNN_SKIP_CLUSTER_TEST=1 (it runs by default, CI included).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hpsearch_fakes import subprocess_env

from hpsearch import records
from hpsearch.trial import FINISHED

pytestmark = pytest.mark.skipif(os.environ.get("CL_RNN_SKIP_CLUSTER_TEST") == "1",
                                reason="CL_RNN_SKIP_CLUSTER_TEST=1")
IP = "127.0.0.2"  # 127.0.0.1 would be replaced by the machine's address
RAY = str(Path(sys.executable).with_name("ray"))
NODE = ["--num-cpus=1", f"--node-ip-address={IP}", "--object-store-memory=500000000", "--memory=4000000000",
        "--disable-usage-stats", "--block"]
# Every process of the cluster, head, worker and driver, must agree on auth or the worker is refused.
# Trials last 8 s: long enough for the second node's actor to start (imports take seconds here)
# before the first node's actor is free again and Tune hands it the next trial instead.
ENV = subprocess_env(RAY_AUTH_MODE="disabled", FAKE_SECONDS_PER_TASK="4.0")
NODES_SCRIPT = """
import sys, time, ray
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
deadline = time.monotonic() + 60
while len([n for n in ray.nodes() if n["Alive"]]) < 2 and time.monotonic() < deadline:
    time.sleep(0.2)
print(" ".join(sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((IP, 0))
        return s.getsockname()[1]


def start(args: list[str], log: Path) -> subprocess.Popen:
    """A `ray start --block` in its own session, so its whole process group can be stopped."""
    return subprocess.Popen([RAY, "start", *args, *NODE], env=ENV, stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the `ray start --block` process; then kill what it left in its session."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    try:
        os.killpg(process.pid, signal.SIGKILL)  # agents that ignore SIGTERM, in our own session only
    except ProcessLookupError:
        pass


def test_sweep_runs_on_both_nodes_of_a_cluster(tmp_path):
    port = free_port()
    address = f"{IP}:{port}"
    head = start(["--head", f"--port={port}", "--include-dashboard=false"], tmp_path / "head.log")
    worker = None
    try:
        worker = start([f"--address={address}"], tmp_path / "worker.log")
        nodes = subprocess.run([sys.executable, "-c", NODES_SCRIPT, address], env=ENV, capture_output=True,
                               text=True, timeout=120)
        node_ids = set(nodes.stdout.split())
        assert len(node_ids) == 2, nodes.stdout + nodes.stderr + (tmp_path / "worker.log").read_text()
        swept = subprocess.run(
            [sys.executable, "-m", "hpsearch.cli", "run", "--method", "si", "--num-samples", "2", "--n-iter", "5",
             "--flag", "num_tasks=2", "--train", "hpsearch_fakes:train", "--address", address,
             "--results", str(tmp_path), "--name", "cluster"],
            env=ENV, capture_output=True, text=True, timeout=180)
        assert swept.returncode == 0, swept.stdout + swept.stderr
        rows = records.read_rows(tmp_path / "cluster" / records.TRIALS_CSV).values()
        assert len(rows) == 2 and all(row["state"] == FINISHED for row in rows)
        assert {row["node"] for row in rows} == node_ids
    finally:
        if worker is not None:
            stop(worker)
        stop(head)
    assert head.poll() is not None and worker.poll() is not None
