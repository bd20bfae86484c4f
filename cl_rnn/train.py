"""``train(config)``: one continual-learning experiment, the function every sweep trial calls.

A run alone is a population of one: ``train_population([config])`` (``cl_rnn.population``, the one
training loop) with the member's outcome raised if it is an error.  It uses the global random
generators (seeded by ``--random_seed``), keeps its checkpoint in its run folder, continues when the
same command runs again, and says in one line how it stopped (``cl_rnn.stops``).
"""
from __future__ import annotations

from typing import Callable

from cl_rnn.config import Config
from cl_rnn.population import train_population
from cl_rnn.results import Result
from cl_rnn.stops import TrainingDiverged

Report = Callable[[int, dict], None]  # report(task, metrics) after every task

__all__ = ["Report", "TrainingDiverged", "train"]


def train(config: Config, report: Report | None = None, tasks: list | None = None, threads: int = 1) -> Result:
    """Run one experiment; ``tasks`` overrides data loading; ``threads``: tasks evaluated at once (a run
    alone on a machine; a sweep's trials keep one each).  Raises ``TrainingDiverged`` when the loss diverges."""
    member_report = None if report is None else (lambda member, task, metrics: report(task, metrics))
    (outcome,) = train_population([config], member_report, tasks, threads=threads)
    if isinstance(outcome, Exception):
        raise outcome
    return outcome
