"""Shared fixtures of the sweep tests: fakes importable by Ray workers, one local Ray instance."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
# Ray workers inherit the environment of the process that starts Ray: let them import the fakes.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), str(REPO), os.environ.get("PYTHONPATH")]))


@pytest.fixture(scope="session")
def ray_local():
    """One private 2-CPU Ray instance for the in-process sweeps of the whole session."""
    import ray

    from hpsearch import ray_adapter  # noqa: F401 - sets Ray's quiet environment first

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR")
    yield
    ray.shutdown()


def subprocess_env(**extra: str) -> dict[str, str]:
    """Environment for an ``hpsearch`` child process: quiet, fakes importable."""
    return {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **extra}
