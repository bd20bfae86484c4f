"""A run folder, written atomically (``cl_rnn.atomic``), and the ``Result`` of a run.

Files: ``config.json`` (every flag), ``command.txt`` (the ``train_split_audioset.py`` line that
reruns it), ``performance_overview.txt`` (the study's summary, as its code writes it: its keys, order
and number formats; final accuracies of every task, so a run stopped by ``--during_acc_criterion``
lists and averages its untrained tasks too), ``accuracy_matrix.csv`` (row t = after task t, every
task; NaN where not reached), ``tasks.csv`` (task, during, final, forgetting) and ``result.json``:
these two, like trials.csv and ``hpsearch analyze``, count the trained tasks only.
They are rewritten after every task, so a stopped or crashed run keeps what it had.  The folder
records what it created, so a run stopped before its first checkpoint can remove exactly that.

An existing, non-empty folder is never overwritten silently and never prompts: the run goes to
a new numbered folder beside it (``<dir>_1``, ...), unless ``--overwrite`` replaces it.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cl_rnn.atomic import write_atomic
from cl_rnn.config import Config, command_line
from cl_rnn.metrics import during, final, forgetting, format_overview, overview
from cl_rnn.rules import CRITERION_STOP
from cl_rnn.version import code_version

DEFAULT_ROOT = Path("results") / "runs"


@dataclass
class Result:
    accuracy_matrix: np.ndarray
    during: list[float]
    final: list[float]
    finished: bool
    stop_reason: str | None
    out_dir: Path
    summary: dict = field(default_factory=dict)
    compression_ratio: float = 1.0
    seconds: float = 0.0
    method: str = "finetune"
    resumed_at: list[int] = field(default_factory=list)  # tasks a restart continued from
    data_fingerprint: str = ""  # of the tasks trained on (``cl_rnn.data.fingerprint``)

    def summary_line(self) -> str:
        state = "finished" if self.finished else f"stopped ({self.stop_reason})"
        mean_final = np.mean(self.final) if self.final else float("nan")
        text = f"{self.method}: {state}; mean final accuracy {mean_final:.2f}%"
        if "mean_during_accuracy" in self.summary:
            text += f", mean during accuracy {self.summary['mean_during_accuracy']:.2f}%"
        return f"{text}; {self.seconds:.1f} s; {self.out_dir}"


def run_result(config: Config, matrix: np.ndarray, *, finished: bool, stop_reason: str | None, out_dir: Path,
               seconds: float, method: str, resumed_at: list[int], data_fingerprint: str,
               compression_ratio: float = 1.0) -> Result:
    """A run's ``Result`` from its accuracy matrix: single runs and population members alike."""
    hnet = config.hnet_all  # the study's overview: NaN for both without a hypernetwork, else its (old) --hnet_arch
    summary = overview(matrix, multitask=config.multitask, compression_ratio=compression_ratio if hnet else None,
                       rnn_arch=config.rnn_arch, hnet_arch=config.hnet_arch if hnet else None,
                       num_train_iter=config.n_iter, finished=finished)
    return Result(accuracy_matrix=matrix.copy(), during=[] if config.multitask else during(matrix),
                  final=final(matrix), finished=finished, stop_reason=stop_reason, out_dir=out_dir, summary=summary,
                  compression_ratio=compression_ratio, seconds=seconds, method=method, resumed_at=list(resumed_at),
                  data_fingerprint=data_fingerprint)


def resolve_out_dir(config: Config) -> tuple[Path, list[Path]]:
    """The folder this run writes to, created empty, and the folders that creating it added (deepest first)."""
    if config.out_dir:
        wanted = Path(config.out_dir)
    else:
        wanted = DEFAULT_ROOT / f"{time.strftime('%Y-%m-%d_%H-%M-%S')}_{os.getpid()}"
    if wanted.exists() and (not wanted.is_dir() or any(wanted.iterdir())):
        if config.overwrite and wanted.is_dir():
            shutil.rmtree(wanted)
            wanted.mkdir()  # the replaced folder was not this run's to remove
        else:
            wanted = _numbered(wanted)
    added = [folder for folder in (wanted, *wanted.parents) if not folder.exists()]
    wanted.mkdir(parents=True, exist_ok=True)
    return wanted, added


def _numbered(path: Path) -> Path:
    k = 1
    while Path(f"{path}_{k}").exists():
        k += 1
    return Path(f"{path}_{k}")


def _absolute(path: str) -> str:
    """A relative ``--data`` against the folder the run started in; "" (the embedded default) and an
    absolute path as given."""
    return os.path.abspath(path) if path and not os.path.isabs(path) else path


class RunFolderError(OSError):
    """The run folder cannot be created or written (one line: the folder and the reason)."""


class RunFolder:
    def __init__(self, config: Config, reuse: bool = False):
        """``reuse``: continue in ``--out_dir`` as it is (a resumed run) instead of a fresh folder."""
        self.made: list[Path] = []  # the files and folders this run created, oldest first: what ``discard`` removes
        try:
            if reuse:
                self.path = Path(config.out_dir)
            else:
                self.path, added = resolve_out_dir(config)
                self.made = added[::-1]
            recorded = config.replace(data=_absolute(config.data))  # reruns and exports run from anywhere
            self._write_text("config.json", json.dumps(dataclasses.asdict(recorded), indent=2) + "\n")
            self._write_text("command.txt", command_line(recorded) + "\n")
        except BaseException as err:
            self.discard()  # a failed write or Ctrl-C: nothing of a folder that was never complete stays
            if not isinstance(err, OSError):
                raise
            where = config.out_dir or DEFAULT_ROOT
            raise RunFolderError(f"--out_dir {where}: cannot write the run folder "
                                 f"({err.strerror or err})") from None

    def record(self, path: Path) -> None:
        """Note ``path`` (in the run folder, about to be created) and the folders above it that do not
        exist yet as this run's, for ``discard``; what exists already is not this run's."""
        new = []
        for p in (path, *path.parents):
            if p == self.path or p.exists():
                break
            new.append(p)
        self.made += [p for p in reversed(new) if p not in self.made]

    def discard(self) -> bool:
        """Remove what this run created, newest first: the files it wrote, then the folders it made, each
        folder only if then empty.  Anything else (a folder that existed before, what others put in it)
        stays.  True when nothing the run created is left."""
        for p in reversed(self.made):
            try:
                if p.is_dir():
                    p.rmdir()
                else:
                    p.unlink(missing_ok=True)
            except OSError:
                pass  # not empty, or not ours to remove: it stays, and discard says so
        self.made = [p for p in self.made if p.exists()]
        return not self.made

    def write(self, result: Result, seed: int) -> None:
        """(Re)write everything derived from the accuracy matrix."""
        self._write("performance_overview.txt", format_overview(result.summary))
        self._write("accuracy_matrix.csv", _matrix_csv(result.accuracy_matrix))
        self._write("tasks.csv", _tasks_csv(result.accuracy_matrix))
        payload = {"finished": result.finished, "stop_reason": result.stop_reason, "during": result.during,
                   "final": result.final, "mean_during_accuracy": _mean(result.during),
                   "mean_final_accuracy": _mean(result.final), "seconds": result.seconds,
                   "compression_ratio": result.compression_ratio, "method": result.method, "seed": seed,
                   "resumed_at": result.resumed_at, "code_version": code_version(),
                   "data_fingerprint": result.data_fingerprint}
        self._write("result.json", json.dumps(payload, indent=2) + "\n")

    def _write(self, name: str, text: str) -> None:
        """One file, atomically; a failed write (disk full) is one line naming the file and the cause."""
        try:
            self._write_text(name, text)
        except OSError as err:
            raise RunFolderError(f"{self.path / name}: cannot write ({err.strerror or err})") from None

    def _write_text(self, name: str, text: str) -> None:
        self.record(self.path / name)
        write_atomic(self.path / name, text)


def read_ended(folder: Path) -> Result | None:
    """The Result a run folder records when its run ended (finished, or stopped by the during
    criterion); None when it did not end (crashed, diverged, still running) or has no result."""
    try:
        saved = json.loads((Path(folder) / "result.json").read_text())
    except (OSError, ValueError):
        return None
    stopped = (saved.get("stop_reason") or "").startswith(CRITERION_STOP)
    if not (saved.get("finished") or stopped):
        return None
    return Result(accuracy_matrix=np.empty((0, 0)), during=saved["during"], final=saved["final"],
                  finished=bool(saved["finished"]), stop_reason=saved.get("stop_reason"), out_dir=Path(folder),
                  seconds=float(saved.get("seconds", 0.0)), method=saved.get("method", ""),
                  compression_ratio=float(saved.get("compression_ratio", 1.0)))


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _matrix_csv(matrix: np.ndarray) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["after_task"] + [f"task_{k}" for k in range(matrix.shape[1])])
    for t, row in enumerate(matrix):
        writer.writerow([t] + ["" if np.isnan(v) else "%f" % v for v in row])
    return buffer.getvalue()


def _tasks_csv(matrix: np.ndarray) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["task", "during", "final", "forgetting"])
    if matrix.shape[0] == 1 and matrix.shape[1] > 1:  # multitask: one evaluation, no during accuracy
        for t, f in enumerate(final(matrix)):
            writer.writerow([t, "", "%f" % f, ""])
        return buffer.getvalue()
    for t, (d, f, forget) in enumerate(zip(during(matrix), final(matrix), forgetting(matrix))):
        writer.writerow([t, "%f" % d, "%f" % f, "%f" % forget])
    return buffer.getvalue()
