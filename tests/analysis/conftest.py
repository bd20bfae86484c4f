"""Fixtures: a folder of single runs and a sweep folder, both constructed (see runfolders.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
from runfolders import build_runs_folder, build_sweep_folder


@pytest.fixture
def runs_folder(tmp_path: Path) -> Path:
    return build_runs_folder(tmp_path / "runs")


@pytest.fixture
def sweep_folder(tmp_path: Path) -> Path:
    return build_sweep_folder(tmp_path / "sweep")
