"""Fault-injection tests: the sweep fakes and these tests' own helpers importable here and by Ray workers."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest


HERE = Path(__file__).resolve().parent
# The repository first, so that its packages win over any same-named folder under tests/.
for folder in (HERE.parent / "hpsearch", HERE, HERE.parents[1]):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from hpsearch_fakes import subprocess_env  # noqa: E402

# Ray workers inherit the environment of the process that starts Ray: let them import the helpers.
os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), subprocess_env()["PYTHONPATH"]])


@pytest.fixture
def quiet_run_log(monkeypatch: pytest.MonkeyPatch) -> None:
    """cl-rnn's log off stderr, for tests that compare a run's stderr with the one line it ends with."""
    monkeypatch.setattr(logging.getLogger("cl_rnn"), "handlers", [logging.NullHandler()])
