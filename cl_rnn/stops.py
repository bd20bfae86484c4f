"""How a run stops: Ctrl-C and a failed write end it in one line, what its folder keeps and how to continue;
a diverged loss is its ``TrainingDiverged``.

A run that stops before its first checkpoint has nothing to continue from.  When it was refused
(flags that contradict the data, a bad data file), interrupted or could not write, it removes exactly
what it created (``RunFolder.discard``), so the same command starts again in the same folder rather
than in ``<dir>_1``.  A diverged loss or a crash keeps its folder: its files say how far it got.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from cl_rnn.config import Config
from cl_rnn.data.store import DataError
from cl_rnn.results import RunFolder, RunFolderError
from cl_rnn.rules import ConfigError

# Stops that leave nothing worth keeping before the first checkpoint.
DISCARDING = (KeyboardInterrupt, RunFolderError, ConfigError, DataError)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


def divergence(value: float, iteration: int) -> tuple[str, TrainingDiverged]:
    """A diverged member's stop reason and the error that is its outcome (``train`` raises it)."""
    reason = f"loss became {value} at iteration {iteration}"
    return reason, TrainingDiverged(f"training diverged: the {reason} (try a smaller --lr or --clip_grad_norm)")


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; the message says what its folder keeps and how to continue."""


def how_to_continue(config: Config, folder: Path, task: int | None, emptied: bool = True, first: str = "") -> str:
    """What a stopped run's folder keeps and the command that continues it (``first``: what to do before).

    ``task``: the task of its checkpoint, None without one; ``emptied``: then, whether all it made is gone."""
    if task is None and emptied:
        return f"the run had saved no checkpoint and kept nothing: {first}rerun the same command to start again"
    if task is None:
        return (f"the run had saved no checkpoint; {folder} keeps what could not be removed: "
                f"{first}rerun the same command to start again in a new folder")
    same = bool(config.out_dir) and Path(config.out_dir) == folder
    rerun = "rerun the same command" if same else f"rerun the same command with --out_dir={folder}"
    return f"{folder} keeps its checkpoint after task {task}: {first}{rerun} to continue"


@contextmanager
def explained(config: Config, folder: RunFolder, last_saved: Callable[[], int | None]) -> Iterator[None]:
    """Around a run's loading and training: a stop before the first checkpoint (``last_saved()`` None) of a
    ``DISCARDING`` kind removes what the run created; Ctrl-C and a failed write become one line."""
    try:
        yield
    except DISCARDING as err:
        task = last_saved()
        emptied = task is None and folder.discard()
        if isinstance(err, KeyboardInterrupt):
            raise RunInterrupted(f"interrupted; {how_to_continue(config, folder.path, task, emptied)}") from None
        if isinstance(err, RunFolderError):
            advice = how_to_continue(config, folder.path, task, emptied, first="once it can be written, ")
            raise RunFolderError(f"{err}; {advice}") from None
        raise
