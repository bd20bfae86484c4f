"""The fingerprint of the tasks a run trains on: a checkpoint continues only on the same data.

A sha1 over every task's classes and tensors (shapes, dtypes and bytes), in task order: what the run
loaded, whatever file it came from, so a file replaced under the same path is told apart.  It reads
only what loading already put in memory: 0.07 s for the full 130 MB Split-AudioSet (loading: 0.7 s).
"""
from __future__ import annotations

import hashlib
from typing import Sequence

from cl_rnn.data.store import Task

PARTS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


def fingerprint(tasks: Sequence[Task]) -> str:
    digest = hashlib.sha1(usedforsecurity=False)
    for task in tasks:
        digest.update(f"task {task.index} classes {task.classes};".encode())
        for part in PARTS:
            tensor = getattr(task, part).detach().cpu().contiguous()
            digest.update(f"{part} {tuple(tensor.shape)} {tensor.dtype};".encode())
            digest.update(tensor.numpy().data)
    return digest.hexdigest()
