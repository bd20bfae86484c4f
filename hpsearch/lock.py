"""One driver per sweep folder: an exclusive ``flock`` on the folder's ``driver.lock`` while the driver lives.

The kernel drops the lock when the driver's process ends, however it ends (SIGKILL included), so a
lock file left behind never blocks a resume; the file holds the driver's pid for the messages.
"""
from __future__ import annotations

import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

LOCK_FILE = "driver.lock"
PATIENCE = 0.2  # seconds a driver waits for readers' shared locks before it is refused


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


def _lock_exclusive(handle: IO[str], folder: Path) -> None:
    """The exclusive lock, tried for ``PATIENCE`` seconds: a reader's probe (``holder``) holds a shared
    lock for an instant and must not refuse a driver; a live driver holds it for good."""
    deadline = time.monotonic() + PATIENCE
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise Locked(Path(folder), _pid_in(handle)) from None
            time.sleep(PATIENCE / 10)
        except OSError as err:  # a file system without locks (e.g. Lustre mounted without -o flock)
            raise NoLocks(err.strerror or str(err)) from None


@contextmanager
def held(folder: Path) -> Iterator[None]:
    """Hold ``folder``'s lock for the ``with`` block; raises Locked when a live process holds it."""
    with open(Path(folder) / LOCK_FILE, "a+") as handle:
        _lock_exclusive(handle, folder)
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield


def holder(folder: Path) -> str | None:
    """The pid of the live process holding ``folder``'s lock, None when none does.  It asks with a shared
    lock held for an instant, which ``held`` waits out; ask once per sweep folder, not once per run."""
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

