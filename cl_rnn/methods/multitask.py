"""Multitask (``--multitask``): one network trained on all tasks at once, the study's upper reference.

A schedule: the trainer draws every batch over all tasks (``cl_rnn.batches.MultitaskStream``) for
``--n_iter`` x ``--num_tasks`` iterations and evaluates once.  Populations do not batch it.
"""
from __future__ import annotations

from cl_rnn.methods.registry import MethodSpec

SPEC = MethodSpec("multitask", flag="multitask", role="schedule", excludes=("ewc", "si", "replay", "masks", "hnet"),
                  not_batched="--multitask is not batched", summary="all tasks trained jointly")
