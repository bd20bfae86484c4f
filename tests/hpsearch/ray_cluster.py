"""A real multi-node Ray cluster on localhost, for tests: start nodes, wait for them, stop them.

Every process of the cluster, head, worker and driver, must agree on auth (``RAY_AUTH_MODE``) or the
worker is refused: build the environment with :func:`cluster_env` and use it for all of them.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from hpsearch_fakes import subprocess_env

IP = "127.0.0.2"  # 127.0.0.1 would be replaced by the machine's address
RAY = str(Path(sys.executable).with_name("ray"))
NODE = ["--num-cpus=1", f"--node-ip-address={IP}", "--object-store-memory=500000000", "--memory=4000000000",
        "--disable-usage-stats", "--block"]
NODES_SCRIPT = """
import sys, time, ray
ray.init(address=sys.argv[1], logging_level="ERROR", log_to_driver=False)
deadline = time.monotonic() + 60
while len([n for n in ray.nodes() if n["Alive"]]) < int(sys.argv[2]) and time.monotonic() < deadline:
    time.sleep(0.2)
print(" ".join(sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])))
"""


def cluster_env(**extra: str) -> dict[str, str]:
    return subprocess_env(RAY_AUTH_MODE="disabled", **extra)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((IP, 0))
        return s.getsockname()[1]


def start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    """A `ray start --block` in its own session, so its whole process group can be stopped."""
    return subprocess.Popen([RAY, "start", *args, *NODE], env=env, stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def start_head(port: int, log: Path, env: dict[str, str]) -> subprocess.Popen:
    return start(["--head", f"--port={port}", "--include-dashboard=false"], log, env)


def start_worker(address: str, log: Path, env: dict[str, str]) -> subprocess.Popen:
    return start([f"--address={address}"], log, env)


def alive_nodes(address: str, count: int, env: dict[str, str]) -> set[str]:
    """The ids of the cluster's live nodes, once ``count`` are up (or after 60 s)."""
    done = subprocess.run([sys.executable, "-c", NODES_SCRIPT, address, str(count)], env=env,
                          capture_output=True, text=True, timeout=120)
    return set(done.stdout.split())


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the `ray start --block` process; then kill what it left in its session."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    kill_session(process)


def kill_session(process: subprocess.Popen) -> None:
    """SIGKILL every process of the node's session (agents that ignore SIGTERM), in our own session only."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
