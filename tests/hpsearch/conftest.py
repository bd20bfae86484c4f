"""The sweep tests' fakes, importable by Ray workers (``ray_local`` is in tests/conftest.py)."""
from __future__ import annotations

import os

from hpsearch_fakes import subprocess_env

# Ray workers inherit the environment of the process that starts Ray: let them import the fakes.
os.environ["PYTHONPATH"] = subprocess_env()["PYTHONPATH"]
