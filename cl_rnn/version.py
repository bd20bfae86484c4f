"""Which code produced a result: the git commit (and whether the tree had uncommitted changes), else
the installed package version.  Recorded in every ``result.json`` so mismatched runs are visible."""
from __future__ import annotations

import functools
import subprocess
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=1)
def code_version() -> dict[str, object]:
    """``{"commit": sha, "dirty": bool}`` in a git checkout, else ``{"package": "cl-rnn X.Y.Z"}``."""
    try:
        commit = _git("rev-parse", "HEAD")
        dirty = bool(_git("status", "--porcelain", "--untracked-files=no", "--", "cl_rnn", "hpsearch",
                          "search_spaces"))
        return {"commit": commit, "dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        return {"package": f"cl-rnn {metadata.version('cl-rnn')}"}
    except metadata.PackageNotFoundError:
        return {"package": "cl-rnn (unknown version)"}


def _git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=10, check=True)
    return done.stdout.strip()
