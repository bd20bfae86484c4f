"""``cl-rnn`` console script and the ``train_split_audioset.py`` entry point."""
from __future__ import annotations

import logging
import os
import sys
import threading
from typing import NoReturn, Sequence

USAGE = """usage: cl-rnn <command> [options]

commands:
  train [FLAGS]   run one continual-learning experiment (the study's flags; see `cl-rnn train --help`)
  data ...        build or import datasets (see `cl-rnn data --help`)
"""


def _log_to_stderr(level: int) -> None:
    """cl-rnn's own log on stderr; like the study, DEBUG (loss every 50 iterations) unless --loglevel_info."""
    logger = logging.getLogger("cl_rnn")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
    logger.setLevel(level)


def _usable_cores() -> int:
    """The cores a run alone may use: those it may run on, or ``$OMP_NUM_THREADS`` where set (several
    runs side by side on one machine: give each its share)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    limit = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, min(cores, int(limit))) if limit.isdigit() else cores


def train_main(argv: Sequence[str], prog: str = "train_split_audioset.py") -> int:
    """Run one experiment from the study's flags; exit status 0 also for a criterion stop.

    Bad input found after parsing (flags that contradict the data or a run folder's checkpoint,
    a bad dataset file, an unwritable run folder) and a diverged loss end with one line on stderr:
    exit status 2 for flags, 1 for the rest; Ctrl-C: one line on what the run folder keeps, 130.
    """
    try:
        return _train(argv, prog)
    except KeyboardInterrupt as err:  # a run's own (RunInterrupted) says what its folder keeps
        before = "interrupted before the run started; nothing was kept: rerun the same command to start it"
        print(f"{prog}: {str(err) or before}", file=sys.stderr)
        return 130


def _train(argv: Sequence[str], prog: str) -> int:
    from cl_rnn.config import build_parser, repeated_flags
    from cl_rnn.data.store import DataError
    from cl_rnn.results import RunFolderError
    from cl_rnn.rules import ConfigError, from_argv
    from cl_rnn.train import TrainingDiverged, train

    config = from_argv(argv, build_parser(prog))
    for warning in repeated_flags(argv):
        print(f"{prog}: warning: {warning}", file=sys.stderr)
    _log_to_stderr(logging.INFO if config.loglevel_info else logging.DEBUG)
    try:
        result = train(config, threads=_usable_cores())  # alone on the machine: every core
    except ConfigError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    except (DataError, RunFolderError, TrainingDiverged) as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 1
    print(result.summary_line())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, end="")
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "train":
        return train_main(rest, prog="cl-rnn train")
    if command == "data":
        from cl_rnn.data.cli import main as data_main

        return data_main(rest)
    print(f"cl-rnn: error: unknown command {command!r} (see cl-rnn --help)", file=sys.stderr)
    return 2


def exit_fast(status: int) -> NoReturn:
    """End a command-line process with ``status`` once its output is flushed, without the interpreter's
    teardown.  With torch imported that teardown (a last garbage collection over torch's objects, then
    every module cleared) takes ~0.6 s on a 2-core VM, a twentieth of a 300-iteration fine-tuning run;
    by then a run has written and closed its files.  While another thread still works (a kernel build
    that a refused run leaves behind) the interpreter's own exit runs: it waits for it."""
    first = threading.main_thread()
    if any(thread is not first and not thread.daemon for thread in threading.enumerate()):
        sys.exit(status)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


def console() -> NoReturn:
    """The ``cl-rnn`` console script: ``main`` from the command line, then ``exit_fast``."""
    exit_fast(main())


if __name__ == "__main__":
    console()
