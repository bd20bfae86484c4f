"""A real two-node Ray cluster on localhost: `hpsearch run --address` spreads trials over both nodes.

Skip with CL_RNN_SKIP_CLUSTER_TEST=1 (it runs by default, CI included).
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from ray_cluster import IP, alive_nodes, cluster_env, free_port, start_head, start_worker, stop

from hpsearch import records
from hpsearch.trial import FINISHED

pytestmark = pytest.mark.skipif(os.environ.get("CL_RNN_SKIP_CLUSTER_TEST") == "1",
                                reason="CL_RNN_SKIP_CLUSTER_TEST=1")
# Trials last 8 s: long enough for the second node's actor to start (imports take seconds here)
# before the first node's actor is free again and Tune hands it the next trial instead.
ENV = cluster_env(FAKE_SECONDS_PER_TASK="4.0")


def test_sweep_runs_on_both_nodes_of_a_cluster(tmp_path):
    port = free_port()
    address = f"{IP}:{port}"
    head = start_head(port, tmp_path / "head.log", ENV)
    worker = None
    try:
        worker = start_worker(address, tmp_path / "worker.log", ENV)
        node_ids = alive_nodes(address, 2, ENV)
        assert len(node_ids) == 2, (tmp_path / "worker.log").read_text()
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
