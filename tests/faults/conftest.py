"""Fault-injection tests: the sweep fakes and these tests' own helpers importable here and by Ray workers."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
# The repository first: tests/search_spaces/ would otherwise shadow the search_spaces package.
for folder in (HERE.parent / "hpsearch", HERE, HERE.parents[1]):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from hpsearch_fakes import subprocess_env  # noqa: E402

# Ray workers inherit the environment of the process that starts Ray: let them import the helpers.
os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), subprocess_env()["PYTHONPATH"]])


@pytest.fixture(scope="session")
def ray_local():
    """One private 2-CPU Ray instance for the in-process sweeps (shared with tests/hpsearch's)."""
    import ray

    from hpsearch import ray_adapter  # noqa: F401 - sets Ray's quiet environment first

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR")
    yield
    ray.shutdown()
