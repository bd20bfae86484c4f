"""One driver per sweep folder: a second one is refused while the first lives, and the kernel frees the
folder when a driver dies (SIGKILL included)."""
from __future__ import annotations

import os
import time

import pytest
from driver_helpers import FAKE_SWEEP, finished_rows, hpsearch, kill, run, start, wait_for


def test_a_second_driver_of_a_live_sweep_is_refused_naming_the_folder_and_the_drivers_pid(tmp_path):
    sweep_dir = tmp_path / "k"
    first = hpsearch("run", *FAKE_SWEEP, "--num-samples", "8", "--results", str(tmp_path), "--name", "k")
    resume = hpsearch("run", "--resume", "k", "--results", str(tmp_path))
    driver = start(first, tmp_path / "driver.log")
    try:
        wait_for(lambda: finished_rows(sweep_dir), "a finished trial", driver)  # Ray's state is there to resume
        second = run(resume)
        assert second.returncode == 1, second.stdout + second.stderr
        assert driver.poll() is None, "the first driver ended: nothing to be refused against"
        assert second.stdout == "" and second.stderr.count("\n") == 1, second.stderr
        assert str(sweep_dir) in second.stderr and f"pid {driver.pid}" in second.stderr
        again = run(first)  # a new sweep of the same name
        assert again.returncode == 2 and again.stderr.count("\n") == 1 and "exists" in again.stderr
        time.sleep(2.5)  # Ray snapshots its state every 2 s
    finally:
        kill(driver)
    # The kernel released the killed driver's lock: the same command now continues the sweep.
    done = run(resume)
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(finished_rows(sweep_dir)) == 8


def test_a_file_system_without_locks_runs_the_sweep_with_one_warning(tmp_path, monkeypatch, capsys):
    """Lustre mounted without -o flock answers flock with ENOLCK: warn, don't refuse every sweep there."""
    import errno

    from hpsearch import lock, sweep

    def no_locks(handle, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(lock.fcntl, "flock", no_locks)
    with sweep.driving(tmp_path):
        assert lock.holder(tmp_path) is None
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"hpsearch run: warning: {tmp_path}: its file system does not lock files (No locks available); "
                     "make sure no other driver runs this sweep"]


def test_a_readers_brief_shared_lock_never_refuses_a_driver(tmp_path):
    """``hpsearch analyze`` probes driver.lock with a shared lock for an instant: a driver (``--resume``) whose
    exclusive lock lands inside that probe waits it out instead of being refused naming a dead driver's pid."""
    import fcntl
    import threading

    from hpsearch import lock

    (tmp_path / lock.LOCK_FILE).write_text("4242\n")  # the pid of the previous, dead driver
    probing, released = threading.Event(), threading.Event()

    def reader() -> None:
        with open(tmp_path / lock.LOCK_FILE) as handle:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
            probing.set()
            time.sleep(0.05)
        released.set()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        assert probing.wait(5)
        with lock.held(tmp_path):
            assert released.is_set()
            assert (tmp_path / lock.LOCK_FILE).read_text() == f"{os.getpid()}\n"
    finally:
        thread.join()


def test_a_live_driver_is_still_refused_after_the_retries(tmp_path):
    from hpsearch import lock

    with lock.held(tmp_path):
        started = time.monotonic()
        with pytest.raises(lock.Locked) as refused:
            with lock.held(tmp_path):
                pass
        assert time.monotonic() - started < 2
    assert refused.value.pid == str(os.getpid()) and refused.value.folder == tmp_path
