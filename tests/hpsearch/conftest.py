"""Shared fixtures of the sweep tests: fakes importable by Ray workers, one local Ray instance."""
from __future__ import annotations

import os

import pytest

from hpsearch_fakes import subprocess_env

# Ray workers inherit the environment of the process that starts Ray: let them import the fakes.
os.environ["PYTHONPATH"] = subprocess_env()["PYTHONPATH"]


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
