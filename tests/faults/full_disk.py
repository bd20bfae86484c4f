"""A disk that fills up while one file of a run folder is being written."""
from __future__ import annotations

import errno
from pathlib import Path

import pytest


def fail_writes_of(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """``Path.write_text`` raises ENOSPC for ``name``'s temporary file (atomic writes go through ``.<name>.*``)."""
    real = Path.write_text

    def write_text(self, text, *args, **kwargs):
        if self.name.startswith(f".{name}."):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text)
