"""What the analysis commands read and write for the user, and the one line said when that fails.

Every path a user types is made absolute here, against the user's working folder, before anything
reaches a Ray trial: a trial runs in a folder of its own, possibly on another machine.
"""
from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence, TypeVar

import pandas as pd

from cl_rnn.results import write_atomic

T = TypeVar("T")
COPY_HINT = "copy the sweep folder somewhere writable and run this there"


class AnalysisError(Exception):
    """Bad input to the analysis; the message names the folder or file and the problem."""


def absolute(path: str) -> str:
    """``path`` against the working folder, symbolic links kept; "" (a default) stays ""."""
    return os.path.abspath(path) if path else path


def sweep_folder(given: str, results: str = "results") -> Path:
    """The folder ``given`` names, or else the sweep ``results/<given>`` (as ``--resume NAME``)."""
    for folder in (Path(given), Path(results) / given):
        if folder.is_dir():
            return Path(absolute(str(folder)))
    raise AnalysisError(f"{given}: no such folder")


def read_json(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise AnalysisError(f"{path}: unreadable JSON ({err})") from None
    if not isinstance(data, dict):
        raise AnalysisError(f"{path}: expected a JSON object")
    return data


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def read_result(path: Path) -> dict:
    """A run's result.json, its numbers checked (a hand-edited or foreign file is one line, not a traceback)."""
    data = read_json(path)
    for key in ("during", "final"):
        values = data.get(key) or []
        if not isinstance(values, list) or not all(_is_number(v) for v in values):
            raise AnalysisError(f"{path}: {key!r} is not a list of accuracies; rerun that run or delete its folder")
    for key in ("compression_ratio", "seconds"):
        if data.get(key) is not None and not _is_number(data[key]):
            raise AnalysisError(f"{path}: {key!r} is not a number; rerun that run or delete its folder")
    return data


def _cause(error: Exception) -> str:
    if isinstance(error, pd.errors.EmptyDataError):
        return "empty file"
    if isinstance(error, UnicodeDecodeError):
        return "not UTF-8 text"
    return " ".join(str(error).split()).removeprefix("Error tokenizing data. C error: ")


def read_table(path: Path, what: str, hint: str, required: Sequence[str] = (),
               read: Callable[[Path], T] = pd.read_csv) -> T:
    """``read(path)`` of a csv file that has the ``required`` columns; any problem with the file is
    one AnalysisError naming it, ``what`` it should be and the ``hint`` on what to do."""
    try:
        header = pd.read_csv(path, nrows=0).columns
        missing = [name for name in required if name not in header]
        if not missing:
            return read(path)
        cause = f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
    except (OSError, ValueError) as error:  # pandas' EmptyDataError and ParserError are ValueErrors
        cause = _cause(error)
    raise not_readable(path, what, cause, hint)


def not_readable(path: Path, what: str, cause: str, hint: str) -> AnalysisError:
    return AnalysisError(f"{path}: not a readable {what} ({cause}); {hint}")


@contextmanager
def writing(path: Path, hint: str) -> Iterator[None]:
    """Turns an OSError of the block into one AnalysisError naming ``path`` and the ``hint``."""
    try:
        yield
    except FileExistsError as error:  # a folder to create is a file
        raise AnalysisError(f"{path}: cannot write ({error.filename} is a file, not a folder); {hint}") from None
    except OSError as error:
        raise AnalysisError(f"{path}: cannot write ({error.strerror or error}); {hint}") from None


def write_output(path: str | Path, text: str, hint: str) -> None:
    """Write ``text`` atomically to ``path``; an unwritable path is one AnalysisError."""
    with writing(Path(path), hint):
        write_atomic(path, text)
