"""What a sweep is: its settings (``sweep.json`` in the sweep folder), its name, and the cheap refusals.

``check`` and ``prepare`` refuse bad settings before anything starts: they load no data, start no Ray and
create nothing, so ``hpsearch slurm`` runs them on the submitting machine too.  Running a sweep is
``hpsearch.sweep``'s.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

import search_spaces
from cl_rnn.results import write_atomic
from cl_rnn.rules import ConfigError
from hpsearch import grid, warm_start
from hpsearch.flags import SWEEP_SET, FlagError, parse_flags
from hpsearch.trial import METRICS, TrialPlan, metric_names
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
        n_iter=args.n_iter, data=args.data, name=args.name, results=args.results,
        scheduler=args.scheduler or default_scheduler(args.metric, points),
        seed=args.seed, sampler=args.sampler, sampler_seed=args.sampler_seed, metric=args.metric,
        flags=flags, train=args.train,
        population=args.population, address=args.address, verbose=args.verbose,
        grid=points, grid_file=absolute(args.grid or ""), warm_start=args.warm_start)


def default_scheduler(metric: str, points: list) -> str:
    """ASHA for one objective (bench/bench_search.py measured TPE + ASHA the cheapest way to the grid's best
    for Online EWC and SI, and worst repeats far below TPE alone's); none for two objectives, which ASHA
    cannot compare, and for a --grid, whose every point is to run."""
    return "asha" if len(metric_names(metric)) == 1 and not points else "none"


def default_name(method: str) -> str:
    return f"{method}-{time.strftime('%Y%m%d-%H%M%S')}"


def plain_name(name: str, option: str) -> str:
    """Refuse a sweep name that would put the folder anywhere but directly under --results."""
    if name in (".", "..") or Path(name).name != name or os.sep in name:
        raise SweepError(f"{option} {name}: a sweep name must be a plain folder name (no '/' or '..'); "
                         "use --results for where it goes")
    return name


def resume_dir(results: str, name: str) -> Path:
    """The folder of the sweep ``--resume NAME`` names: ``results/NAME``, NAME a plain name, the folder there."""
    sweep_dir = Path(absolute(results)) / plain_name(name, "--resume")
    if not sweep_dir.is_dir():
        raise SweepError(f"--resume {name}: no sweep in {sweep_dir}")
    return sweep_dir


def plan_of(settings: SweepSettings) -> TrialPlan:
    base = {**settings.flags, "random_seed": settings.seed}
    if settings.n_iter is not None:
        base["n_iter"] = settings.n_iter
    if settings.data:
        base["data"] = absolute(settings.data)
    return TrialPlan(settings.method, base, settings.metric, str(settings.sweep_dir), settings.grid)


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
