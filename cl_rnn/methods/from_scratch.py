"""Training from scratch (``--train_from_scratch``): a fresh network for every task.

A schedule, not a weight source: the trainer rebuilds the method before each task and keeps each
task's final weights to evaluate it with (``cl_rnn.train``).  No transfer and no forgetting: the
study's reference for what each task alone reaches.
"""
from __future__ import annotations

from cl_rnn.methods.registry import MethodSpec

SPEC = MethodSpec("from_scratch", flag="train_from_scratch", role="schedule",
                  excludes=("multitask", "ewc", "si", "replay"), summary="a fresh network for every task")
