"""The study's own code beside cl-rnn, for the benches that run both (fidelity.py, bench_vs_study.py).

``../shared/study/`` installs and runs the study's code (read its README); ``$STUDY`` names the install
(default /tmp/study).  The study reads its data from one fixed path in the install: ``install_data``
exports a cl-rnn dataset to the study's pickle and puts it there.
"""
from __future__ import annotations

import hashlib
import math
import os
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from cl_rnn.data.legacy import export_pickle
from search_spaces._published import LINES

ROOT = Path(__file__).resolve().parents[1]
STUDY_RUN = ROOT.parent / "shared" / "study" / "run.sh"
STUDY_DATA = Path("src/datasets/sequential/audioset/audioset_data_balanced.pickle")  # under $STUDY
DISTINCT = ("rnn_arch", "lr", "orthogonal_hh_init", "coreset_size")  # what tells a method's lines apart


def published() -> dict[str, list[str]]:
    """Every published line's flags by a short name: the method, and for a method's further lines
    the values of DISTINCT flags that differ from its first line (e.g. ``finetune rnn_arch=256``)."""
    lines = {}
    for method, texts in LINES.items():
        first = dict(_flag_values(texts[0]))
        for text in texts:
            values = dict(_flag_values(text))
            differ = [f"{k}={values.get(k, 'off')}" for k in DISTINCT if values.get(k) != first.get(k)]
            lines[" ".join([method, *differ])] = shlex.split(text)
    return lines


def _flag_values(text: str) -> list[tuple[str, str]]:
    return [(flag.lstrip("-").partition("=")[0], flag.partition("=")[2] or "on") for flag in shlex.split(text)]


@dataclass(frozen=True)
class Outcome:
    """What one run's performance_overview.txt says."""
    final: float  # mean_final_accuracy as written
    during: float  # mean_during_accuracy
    trained: int  # tasks with a during accuracy
    finished: int


NUMBERS = {"mean_final_accuracy", "mean_during_accuracy", "final_accuracy", "during_accuracy", "finished"}


def read_overview(path: Path) -> Outcome:
    """Reads either side's file: ``key value [value ...]`` lines; brackets and commas are ignored."""
    values = {}
    for line in path.read_text().splitlines():
        key, _, rest = line.partition(" ")
        if key in NUMBERS:
            values[key] = [float(v) for v in rest.replace("[", " ").replace("]", " ").replace(",", " ").split()]
    during = values.get("mean_during_accuracy", [math.nan])  # multitask writes no during keys
    return Outcome(values["mean_final_accuracy"][0], during[0],
                   len(values.get("during_accuracy", values["final_accuracy"])), int(values["finished"][0]))


def study_folder() -> Path:
    return Path(os.environ.get("STUDY", "/tmp/study"))


def study_ready() -> str | None:
    """None when the study's code is set up, else the one line that says what is missing."""
    if not STUDY_RUN.exists():
        return f"{STUDY_RUN} not found: the study's scripts live in ../shared/study"
    if not (study_folder() / "venv/bin/python").exists():
        return (f"the study's code is not set up in {study_folder()}: run "
                f"{STUDY_RUN.parent}/setup.sh MIRROR PICKLE (see its README)")
    return None


def install_data(data: Path, cache: Path) -> str:
    """Exports ``data`` to the study's pickle, puts it where the study's code reads it; returns its sha1."""
    pickle_path = cache / f"{data.stem}.pickle"
    export_pickle(data, pickle_path)
    digest = hashlib.sha1(pickle_path.read_bytes(), usedforsecurity=False).hexdigest()
    target = study_folder() / STUDY_DATA
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(pickle_path, target)
    return digest


def log_path(out: Path) -> Path:
    """``<run folder>.log``; not ``with_suffix``, which would cut a name at its "lr=0.0001"."""
    return out.parent / f"{out.name}.log"
