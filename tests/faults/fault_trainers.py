"""Training functions with injected faults, for sweeps (importable by Ray workers via PYTHONPATH).

Each honours ``train(config, report, tasks)``.  Real ones call ``cl_rnn.train.train`` and break it
from the outside; the others build on the millisecond fakes of ``hpsearch_fakes``.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import hpsearch_fakes
from cl_rnn.config import Config



def has_fault(config: Config) -> bool:
    """True for one trial of a sweep (the first to ask, and its retries); the others run normally."""
    marker = Path(config.out_dir).parents[1] / "fault_trial"  # in the sweep folder
    try:
        handle = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return marker.read_text() == config.out_dir
    with os.fdopen(handle, "w") as out:
        out.write(config.out_dir)
    return True


def train_raising(config: Config, report: Any = None, tasks: Any = None) -> Any:
    """One trial raises after reporting task 0 (a bug in a method, say)."""
    fault = has_fault(config)

    def on_task(task: int, metrics: dict) -> None:
        if report is not None:
            report(task, metrics)
        if fault:
            raise RuntimeError(f"injected fault after task {task}")
    return hpsearch_fakes.train(config, on_task, tasks)


def train_poisoned(config: Config, report: Any = None, tasks: Any = None, poison: float = math.nan,
                   fault: bool | None = None) -> Any:
    """The real trainer whose loss becomes ``poison`` (NaN or inf) from task 1 on, in one trial."""
    from cl_rnn.learners import AutogradLearner, KernelLearner
    from cl_rnn.train import train

    fault = has_fault(config) if fault is None else fault
    poisoned = {"on": False}
    real = {learner: learner.gradients for learner in (KernelLearner, AutogradLearner)}

    def poisoning(gradients: Any) -> Any:
        def losses(self: Any, *args: Any) -> Any:
            values = gradients(self, *args)
            return values + poison if poisoned["on"] else values
        return losses

    def on_task(task: int, metrics: dict) -> None:
        if report is not None:
            report(task, metrics)
        poisoned["on"] = fault

    for learner, gradients in real.items():
        learner.gradients = poisoning(gradients)
    try:
        return train(config, on_task, tasks)
    finally:
        for learner, gradients in real.items():
            learner.gradients = gradients


def train_crashing_always(config: Config, report: Any = None, tasks: Any = None) -> Any:
    """Every attempt of one trial kills its own process (out of memory every time, say)."""
    if has_fault(config):
        counter = Path(config.out_dir).parent / "attempts"
        counter.write_text(str(int(counter.read_text()) + 1 if counter.exists() else 1))
        os._exit(9)
    return hpsearch_fakes.train(config, report, tasks)


def train_telling_session(config: Config, report: Any = None, tasks: Any = None) -> Any:
    """``hpsearch_fakes.train``, after writing its process session id (which node runs it) to the trial folder."""
    (Path(config.out_dir).parent / "session").write_text(str(os.getsid(0)))
    return hpsearch_fakes.train(config, report, tasks)


def train_always_raising(config: Config, report: Any = None, tasks: Any = None) -> Any:
    """Every trial raises at once (a broken setup rather than a bad sample)."""
    raise ValueError("injected fault in every trial")
