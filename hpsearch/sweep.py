"""A sweep's driver: run or resume a sweep on a local or joined Ray cluster, one driver per sweep folder.

The sweep folder ``results/<name>/`` is the Ray experiment itself (its state files and one
``trial_<id>/`` folder per trial, each holding the run folder ``run/`` that ``train`` writes),
plus ``sweep.json`` (its settings, ``hpsearch.settings``), ``trials.csv`` and ``optuna.journal``.
"""
from __future__ import annotations

import contextlib
import importlib
import sys
from pathlib import Path
from typing import Any, Iterator

import search_spaces
from cl_rnn.rules import ConfigError
from hpsearch import lock, progress, records
from hpsearch.settings import SweepBusy, SweepError, SweepSettings, load, plan_of, prepare, resume_dir, save, taken
from hpsearch.trial import TrainFunction


def resolve_train(spec: str) -> TrainFunction | None:
    """``module:function`` -> the function; "" -> None (trials import cl_rnn.train.train)."""
    if not spec:
        return None
    module, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise SweepError(f"--train {spec!r}: {err}") from None


def check_data(settings: SweepSettings) -> None:
    """Refuse data every trial would refuse (the file, or the tasks the sweep's flags cut from it) before
    Ray starts: cl_rnn's own loading and checks, on the flags all trials share (not a sampled
    configuration: a sampled --coreset_size may be too large where the default is not).  Not part of
    ``hpsearch.settings.check``, which stays cheap (``hpsearch slurm`` runs it on the submitting machine)."""
    if not settings.data and settings.address:
        return  # each node of a cluster builds the default data itself
    from cl_rnn.data.store import DataError
    from cl_rnn.prepare import run_tasks

    try:
        run_tasks(plan_of(settings).config({}, out_dir=""))
    except (DataError, ConfigError, ValueError, search_spaces.SpaceError) as err:
        raise SweepError(str(err)) from None


def _execute(settings: SweepSettings, train: TrainFunction | None, resuming: bool) -> list[dict[str, Any]]:
    from hpsearch import ray_adapter  # Ray loads only when a sweep runs

    if not settings.data and not settings.address:
        # Build the embedded dataset once here, not in every first trial at the same time.
        from cl_rnn.data.surrogate import ensure_surrogate

        ensure_surrogate()
    started = ray_adapter.start(settings.address, settings.verbose)
    try:
        plan = plan_of(settings)
        train = train or resolve_train(settings.train)
        if resuming:
            ray_adapter.resume(settings.sweep_dir, plan, train, settings.population)
        else:
            ray_adapter.fit(settings, plan, train)
    finally:
        ray_adapter.stop(started)
    rows = list(records.read_rows(settings.sweep_dir / records.TRIALS_CSV).values())
    print(progress.best_text(rows, settings.metric, settings.sweep_dir), flush=True)
    if len(rows) < settings.num_samples:  # stopped early, e.g. by Ctrl-C
        print(f"{len(rows)} of {settings.num_samples} trials ended; continue with: hpsearch run --resume "
              f"{settings.name} --results {settings.results}", flush=True)
    return rows


def run(settings: SweepSettings, train: TrainFunction | None = None) -> list[dict[str, Any]]:
    """Start a new sweep; returns its trials.csv rows.  ``train`` replaces cl_rnn.train.train."""
    notices = prepare(settings)
    if train is None and not settings.train:  # a replacement trainer may not read cl_rnn data at all
        check_data(settings)
    for line in notices:
        print(line, file=sys.stderr)
    try:
        settings.sweep_dir.mkdir(parents=True)  # atomic: of two drivers starting one name, one gets it
    except FileExistsError:
        raise taken(settings) from None
    except OSError as err:
        raise SweepError(f"--results {settings.results}: cannot create the sweep folder "
                         f"({err.strerror or err})") from None
    with driving(settings.sweep_dir):
        save(settings)
        return _execute(settings, train, resuming=False)


def resume(results: str, name: str, address: str | None = None, verbose: bool = False,
           train: TrainFunction | None = None) -> list[dict[str, Any]]:
    """Continue the sweep ``results/<name>`` after its driver died, wherever the folder lies now."""
    sweep_dir = resume_dir(results, name)
    with driving(sweep_dir):
        settings = load(sweep_dir)
        settings.address, settings.verbose = address, verbose
        return _execute(settings, train, resuming=True)


@contextlib.contextmanager
def driving(sweep_dir: Path) -> Iterator[None]:
    """This process is the sweep folder's one driver while the block runs (``hpsearch.lock``)."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(lock.held(sweep_dir))
        except lock.Locked as busy:
            raise SweepBusy(f"{sweep_dir}: its driver is still running (pid {busy.pid}); wait for it to end "
                            "or stop that process, then --resume") from None
        except lock.NoLocks as err:
            print(f"hpsearch run: warning: {sweep_dir}: its file system does not lock files ({err}); "
                  "make sure no other driver runs this sweep", file=sys.stderr)
        except OSError as err:
            raise SweepError(f"{sweep_dir}: cannot lock the sweep folder ({err.strerror or err})") from None
        yield
