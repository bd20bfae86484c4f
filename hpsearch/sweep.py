"""A sweep: settings, its folder under ``results/``, and run/resume on a local or joined Ray cluster.

The sweep folder ``results/<name>/`` is the Ray experiment itself (its state files and one
``trial_<id>/`` folder per trial, each holding the run folder ``run/`` that ``train`` writes),
plus ``sweep.json`` (these settings), ``trials.csv`` and ``optuna.journal``.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import optuna

import search_spaces
from cl_rnn.results import write_atomic
from cl_rnn.rules import ConfigError
from hpsearch import grid, lock, progress, records, warm_start
from hpsearch.flags import SWEEP_SET, FlagError, parse_flags
from hpsearch.trial import METRICS, TrainFunction, TrialPlan, metric_names
from hpsearch.user_files import absolute

SETTINGS_FILE = "sweep.json"
SCHEDULERS = ("none", "asha")
SAMPLERS = ("tpe", "random")  # Optuna's TPESampler (Ray's OptunaSearch default) or RandomSampler


class SweepError(Exception):
    """A sweep that cannot start or resume; the message is one line naming the problem."""

    exit_status = 2  # bad input


class SweepBusy(SweepError):
    """The sweep folder's driver is alive: one driver per folder."""

    exit_status = 1  # not bad input: the same command works once that driver has ended


@dataclass
class SweepSettings:
    method: str
    num_samples: int = 8
    max_concurrent: int | None = None
    n_iter: int | None = None  # None: the study's default
    data: str = ""  # "" : the embedded surrogate
    name: str = ""
    results: str = "results"
    scheduler: str = "none"
    seed: int = 42
    sampler: str = "tpe"
    sampler_seed: int | None = None  # None: ``seed``; trials keep ``seed`` as their --random_seed
    metric: str = "final"
    flags: dict[str, Any] = field(default_factory=dict)  # any other flag, for every trial
    train: str = ""  # "module:function" of a train(config, report) replacement; "": cl_rnn.train
    population: int = 1  # Optuna trials trained together in one Ray trial (hpsearch.population)
    grid: list[dict[str, Any]] = field(default_factory=list)  # --grid: its points, each run once (hpsearch.grid)
    grid_file: str = ""  # the file they were read from, for the record (--resume needs only the points)
    warm_start: bool = False  # --warm-start: the method's published line is the first trial
    address: str | None = field(default=None, metadata={"saved": False})
    verbose: bool = field(default=False, metadata={"saved": False})

    @property
    def sweep_dir(self) -> Path:
        return Path(absolute(self.results)) / self.name

    @property
    def search_seed(self) -> int:
        """The sampler's seed: --sampler-seed, else --seed."""
        return self.seed if self.sampler_seed is None else self.sampler_seed


def save(settings: SweepSettings) -> None:
    saved = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)
             if f.metadata.get("saved", True)}
    path = settings.sweep_dir / SETTINGS_FILE
    write_atomic(path, json.dumps(saved, indent=2) + "\n")


def load(sweep_dir: Path) -> SweepSettings:
    """The saved settings, placed wherever the folder lies now (it may have been moved or copied)."""
    path = sweep_dir / SETTINGS_FILE
    try:
        settings = SweepSettings(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as err:
        raise SweepError(f"{path}: cannot read the sweep's settings ({err})") from None
    settings.results, settings.name = str(sweep_dir.parent), sweep_dir.name
    return settings


def settings_of(args: argparse.Namespace, warn: bool = True) -> SweepSettings:
    """The settings of a new sweep from `hpsearch run`'s arguments (``hpsearch slurm`` reads the same);
    ``warn``: say which --flag was given twice with different values."""
    if not args.method:
        raise SweepError("--method is required (or --resume NAME); see `hpsearch spaces`")
    try:
        points = grid.read(args.grid, SWEEP_SET) if args.grid else []
        flags = parse_flags(args.flag, warn)
    except grid.GridError as err:
        raise SweepError(f"--grid {args.grid}: {err}") from None
    except FlagError as err:
        raise SweepError(str(err)) from None
    return SweepSettings(
        method=args.method, num_samples=args.num_samples if args.num_samples is not None else len(points) or 8,
        max_concurrent=args.max_concurrent,
        n_iter=args.n_iter, data=args.data, name=args.name, results=args.results, scheduler=args.scheduler,
        seed=args.seed, sampler=args.sampler, sampler_seed=args.sampler_seed, metric=args.metric,
        flags=flags, train=args.train,
        population=args.population, address=args.address, verbose=args.verbose,
        grid=points, grid_file=absolute(args.grid or ""), warm_start=args.warm_start)


def default_name(method: str) -> str:
    return f"{method}-{time.strftime('%Y%m%d-%H%M%S')}"


def plain_name(name: str, option: str) -> str:
    """Refuse a sweep name that would put the folder anywhere but directly under --results."""
    if name in (".", "..") or Path(name).name != name or os.sep in name:
        raise SweepError(f"{option} {name}: a sweep name must be a plain folder name (no '/' or '..'); "
                         "use --results for where it goes")
    return name


def plan_of(settings: SweepSettings) -> TrialPlan:
    base = {**settings.flags, "random_seed": settings.seed}
    if settings.n_iter is not None:
        base["n_iter"] = settings.n_iter
    if settings.data:
        base["data"] = absolute(settings.data)
    return TrialPlan(settings.method, base, settings.metric, str(settings.sweep_dir), settings.grid)


def resolve_train(spec: str) -> TrainFunction | None:
    """``module:function`` -> the function; "" -> None (trials import cl_rnn.train.train)."""
    if not spec:
        return None
    module, _, name = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise SweepError(f"--train {spec!r}: {err}") from None


def check(settings: SweepSettings) -> list[str]:
    """Refuse bad settings before Ray starts: one sampled configuration (with --grid: every point) must pass
    the flag rules.  Returns the notices to print once nothing is refused (a pinned sampled flag, a population
    not batched, what --warm-start runs first)."""
    if settings.scheduler not in SCHEDULERS or settings.metric not in METRICS or settings.sampler not in SAMPLERS:
        raise SweepError(f"--scheduler must be one of {SCHEDULERS}, --metric one of {METRICS} "
                         f"and --sampler one of {SAMPLERS}")
    if settings.grid and settings.sampler != "tpe":
        raise SweepError(f"--sampler {settings.sampler}: a --grid sweep runs its points, it samples nothing")
    if settings.scheduler == "asha" and len(metric_names(settings.metric)) > 1:
        raise SweepError(f"--scheduler asha stops trials by one objective and --metric {settings.metric} has two; "
                         "use --scheduler none, or --metric final or during")
    if settings.num_samples < 1 or settings.population < 1 or (
            settings.max_concurrent is not None and settings.max_concurrent < 1):
        raise SweepError("--num-samples, --population and --max-concurrent must be positive")
    if settings.data and not Path(settings.data).is_file():
        raise SweepError(f"--data {settings.data}: no such file")
    if settings.grid and (settings.warm_start or settings.population > 1 or settings.num_samples > len(settings.grid)):
        raise SweepError(f"--grid: its {len(settings.grid)} points run once each: --num-samples at most "
                         f"{len(settings.grid)}, and neither --warm-start nor --population")
    try:
        space = search_spaces.load(settings.method)
        trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).ask()
        configs = grid.configs(plan_of(settings), space, settings.grid) if settings.grid else [
            plan_of(settings).config(space.suggest(trial), out_dir="")]
        notices = warm_start.notices(plan_of(settings), settings.flags) if settings.warm_start else []
    except (search_spaces.SpaceError, ConfigError, grid.GridError) as err:
        raise SweepError(str(err)) from None
    if any(config.multitask for config in configs) and "during" in metric_names(settings.metric):
        raise SweepError(f"--metric {settings.metric}: a multitask run has no during accuracy; use --metric final")
    notices += [f"hpsearch: --flag {name}={settings.flags[name]} fixes {name} in every trial (not sampled)"
                for name in sorted(set(settings.flags) & set(search_spaces.parameters(space))) if not settings.grid]
    if settings.population > 1:
        from hpsearch.population import notice

        line = notice(plan_of(settings), space.suggest(trial))
        if line:  # the method's trials cannot share a pass: plain trials run side by side instead
            notices.append(line)
            settings.population = 1
    return notices


def prepare(settings: SweepSettings, resume: str = "--resume") -> list[str]:
    """A new sweep's name and absolute paths, and the cheap refusals: ``check`` and a taken name (whose
    message says to continue it with ``resume NAME``); returns check's notices.  Loads no data, creates nothing."""
    settings.name = plain_name(settings.name or default_name(settings.method), "--name")
    settings.results, settings.data = absolute(settings.results), absolute(settings.data)
    notices = check(settings)
    if settings.sweep_dir.exists():
        raise taken(settings, resume)
    return notices


def taken(settings: SweepSettings, resume: str = "--resume") -> SweepError:
    return SweepError(f"{settings.sweep_dir} exists: continue it with {resume} {settings.name} "
                      "or choose another --name")


def check_data(settings: SweepSettings) -> None:
    """Refuse data every trial would refuse (the file, or the tasks the sweep's flags cut from it) before
    Ray starts: cl_rnn's own loading and checks, on the flags all trials share (not a sampled
    configuration: a sampled --coreset_size may be too large where the default is not).  Not part of
    ``check``, which stays cheap (``hpsearch slurm`` runs it on the submitting machine)."""
    if not settings.data and settings.address:
        return  # each node of a cluster builds the default data itself
    from cl_rnn.data.store import DataError
    from cl_rnn.train import run_tasks

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


def resume_dir(results: str, name: str) -> Path:
    """The folder of the sweep ``--resume NAME`` names: ``results/NAME``, NAME a plain name, the folder there."""
    sweep_dir = Path(absolute(results)) / plain_name(name, "--resume")
    if not sweep_dir.is_dir():
        raise SweepError(f"--resume {name}: no sweep in {sweep_dir}")
    return sweep_dir


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
