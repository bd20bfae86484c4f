"""Interrupted writes: a reader sees the old file or the new one, never half of one; nothing is lost."""
from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from cl_rnn import checkpoint, results
from cl_rnn.train import train
from hpsearch import records
from train_helpers import small_config, synthetic_tasks

TASKS = synthetic_tasks(num_tasks=3)
WRITER = """
import sys, json, torch
from pathlib import Path
from cl_rnn import checkpoint
from cl_rnn.results import write_atomic
folder = Path(sys.argv[1])
k = 0
while True:
    k += 1
    write_atomic(folder / "result.json", json.dumps({"k": k, "values": list(range(20000))}))
    state = checkpoint.RunState(configs=[{}], task=k, active=[0], learner={"theta": torch.full((200000,), float(k))},
                                members=[{"rng": checkpoint.rng_states()}], data_fingerprint="")
    checkpoint.save(checkpoint.path_in(folder), state)
"""


def disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def test_a_failing_replace_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "result.json"
    results.write_atomic(target, '{"old": true}')
    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError, match="No space left"):
        results.write_atomic(target, '{"new": true}')
    assert json.loads(target.read_text()) == {"old": True} and not leftovers(tmp_path)


def test_a_failing_fsync_leaves_the_old_checkpoint_loadable(tmp_path, monkeypatch):
    config = small_config(tmp_path, num_tasks=3, n_iter=10)
    with pytest.raises(OSError, match="No space left"):
        calls = {"n": 0}
        real_fsync = os.fsync

        def fsync_fails_second_time(fd):
            calls["n"] += 1
            if calls["n"] == 2:
                disk_full()
            real_fsync(fd)

        monkeypatch.setattr(checkpoint.os, "fsync", fsync_fails_second_time)
        train(config, tasks=TASKS)  # the disk fills up while saving task 1's checkpoint
    monkeypatch.undo()
    run = Path(config.out_dir)
    assert checkpoint.load(checkpoint.path_in(run)).task == 0 and not leftovers(run)
    assert len(json.loads((run / "result.json").read_text())["during"]) == 2  # task 1's row was written
    resumed = train(config, tasks=TASKS)  # space again: the run continues after task 0
    whole = train(small_config(tmp_path / "whole", num_tasks=3, n_iter=10), tasks=TASKS)
    np.testing.assert_array_equal(resumed.accuracy_matrix, whole.accuracy_matrix)
    assert resumed.resumed_at == [1]


def test_a_failing_trials_csv_write_keeps_the_old_table(tmp_path, monkeypatch):
    path = tmp_path / records.TRIALS_CSV
    records.write_rows(path, [{"trial_id": "a", "state": "finished", "lr": 0.01}])
    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError):
        records.write_rows(path, [{"trial_id": "a", "state": "finished"}, {"trial_id": "b", "state": "failed"}])
    assert list(records.read_rows(path)) == ["a"]


def test_a_writer_killed_at_random_moments_never_leaves_a_half_written_file(tmp_path):
    reads = 0
    for kill in range(3):
        # the previous writer's checkpoint goes: the wait below is then for this writer's first one
        # (a new writer takes seconds to import torch; killed before its first checkpoint, its
        # result.json and the old checkpoint would rightly disagree)
        checkpoint.path_in(tmp_path).unlink(missing_ok=True)
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)])
        try:
            deadline = time.monotonic() + 180  # its start (importing torch) crawls on a loaded machine
            while not checkpoint.path_in(tmp_path).is_file():
                assert time.monotonic() < deadline and writer.poll() is None
                time.sleep(0.01)
            until = time.monotonic() + 0.5 + 0.3 * kill
            while time.monotonic() < until:  # read while it writes: every read is a whole file
                assert len(json.loads((tmp_path / "result.json").read_text())["values"]) == 20000
                reads += 1
        finally:
            os.kill(writer.pid, signal.SIGKILL)
            writer.wait()
        k = json.loads((tmp_path / "result.json").read_text())["k"]
        state = checkpoint.load(checkpoint.path_in(tmp_path))
        assert torch.equal(state.learner["theta"], torch.full((200000,), float(state.task)))
        assert state.task in (k - 1, k)
    assert reads > 10
