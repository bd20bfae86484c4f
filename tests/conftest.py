"""Shared fixtures: a tiny Split-AudioSet file built by the surrogate generator."""
from __future__ import annotations

from pathlib import Path

import pytest

from cl_rnn.data.surrogate import write_surrogate

REPO = Path(__file__).resolve().parents[1]
AUDIOSET_META = (REPO / ".." / "shared" / "reference" / "audioset_meta").resolve()


@pytest.fixture(scope="session")
def tiny_dataset_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """100 classes x 30 clips (24 train / 6 test per class): tasks of 240 train, 60 test clips.

    Use it with ``--val_set_size`` <= 230 (the study's 500 needs the full-size data).
    """
    return write_surrogate(tmp_path_factory.mktemp("data") / "tiny.h5", seed=0, clips_per_class=30)


@pytest.fixture
def surrogate_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the default-surrogate cache at a fresh folder and make the default small."""
    monkeypatch.setenv("CL_RNN_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr("cl_rnn.data.surrogate.DEFAULT_CLIPS_PER_CLASS", 20)
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def ray_local():
    """One private 2-CPU Ray instance for every in-process sweep of the session."""
    import ray

    from hpsearch import ray_env  # noqa: F401 - Ray's quiet environment before Ray loads

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 logging_level="ERROR")
    yield
    ray.shutdown()
