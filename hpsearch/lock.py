"""One driver per sweep folder: an exclusive ``flock`` on the folder's ``driver.lock`` while the driver lives.

The kernel drops the lock when the driver's process ends, however it ends (SIGKILL included), so a
lock file left behind never blocks a resume; the file holds the driver's pid for the messages.
"""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

LOCK_FILE = "driver.lock"


class NoLocks(Exception):
    """The folder's file system does not lock files."""


class Locked(Exception):
    """Another live process holds the folder's lock."""

    def __init__(self, folder: Path, pid: str) -> None:
        super().__init__(f"{folder}: held by pid {pid}")
        self.folder, self.pid = folder, pid


def _pid_in(handle: IO[str]) -> str:
    handle.seek(0)
    return handle.read().strip() or "unknown"  # unknown: the holder has not written it yet


@contextmanager
def held(folder: Path) -> Iterator[None]:
    """Hold ``folder``'s lock for the ``with`` block; raises Locked when a live process holds it."""
    with open(Path(folder) / LOCK_FILE, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Locked(Path(folder), _pid_in(handle)) from None
        except OSError as err:  # a file system without locks (e.g. Lustre mounted without -o flock)
            raise NoLocks(err.strerror or str(err)) from None
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield


def holder(folder: Path) -> str | None:
    """The pid of the live process holding ``folder``'s lock, None when none does."""
    try:
        handle = open(Path(folder) / LOCK_FILE)
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _pid_in(handle)
        except OSError:
            return None  # no file locks there: no driver can be seen
        return None


def live_driver(run_dir: Path, levels: int = 2) -> str | None:
    """The pid of a live sweep driver holding ``run_dir`` or a folder up to ``levels`` above it
    (a trial's run folder is ``<sweep>/trial_<id>/run``)."""
    for folder in [Path(run_dir), *Path(run_dir).parents[:levels]]:
        pid = holder(folder)
        if pid is not None:
            return pid
    return None
