"""Optuna search spaces, one module per continual-learning method of the study.

A module ``search_spaces/<method>.py`` holds two things:

- ``FIXED``: the flags that make the method, e.g. ``{"use_ewc": True, "multi_head": True}``;
- ``suggest(trial) -> dict``: a define-by-run function over an Optuna trial returning the
  other flags it chose (constants).  Conditional parameters are plain ``if`` branches.

Every key is a field name of :class:`cl_rnn.config.Config` (the study's flag name), and so
is every trial parameter except the few "gates" of ``search_spaces._common.GATES``.  The
sweep sets ``n_iter``, ``out_dir``, ``data`` and ``random_seed`` itself.  Adding a space is
adding one file: discovery is :func:`pkgutil.iter_modules` over this package (private modules,
``_*.py``, are skipped), and the ``search_spaces/`` folders of ``CL_RNN_PLUGINS`` (``cl_rnn.plugins``).
"""
from __future__ import annotations

import importlib
import math
import pkgutil
import warnings
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Callable, Mapping, Sequence

import optuna

from cl_rnn import plugins
from cl_rnn.config import FIELDS, Config
from search_spaces._common import GATES

__all__ = ["SearchSpace", "SpaceError", "names", "load", "all_spaces", "suggest_flags",
           "parameters", "trial_params", "replay", "match"]


class SpaceError(Exception):
    """A missing or malformed search space, or values outside a space; one line."""


@dataclass(frozen=True)
class SearchSpace:
    name: str
    fixed: dict[str, Any]
    suggest: Callable[[optuna.trial.BaseTrial], dict[str, Any]]
    summary: str

    def config(self, trial: optuna.trial.BaseTrial, base: Config | None = None) -> Config:
        """``base`` (default: the study's defaults) with the fixed and the suggested flags."""
        return (base or Config()).replace(**self.fixed, **self.suggest(trial))


def names() -> list[str]:
    """Every space: this package's modules and ``CL_RNN_PLUGINS`` folders' ``search_spaces/`` (``cl_rnn.plugins``)."""
    return sorted(_own() | set(plugins.plugin_files("search_spaces")))


def _own() -> set[str]:
    """This package's spaces (private modules, ``_*.py``, are not)."""
    return {info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")}


def _check_module(name: str, module: ModuleType) -> None:
    fixed, suggest = getattr(module, "FIXED", None), getattr(module, "suggest", None)
    if not isinstance(fixed, dict) or not callable(suggest):
        raise SpaceError(f"search_spaces/{name}.py: needs a FIXED dict and a suggest(trial) function")
    unknown = sorted(set(fixed) - set(FIELDS))
    if unknown:
        raise SpaceError(f"search_spaces/{name}.py: FIXED names unknown flags {unknown}")


def load(name: str) -> SearchSpace:
    if name not in names():
        raise SpaceError(f"unknown method {name!r}; known: {', '.join(names())}")
    own = name in _own()
    module = importlib.import_module(f"{__name__}.{name}") if own else plugins.import_plugin("search_spaces", name)
    _check_module(name, module)
    summary = (module.__doc__ or "").strip().splitlines()
    return SearchSpace(name, dict(module.FIXED), module.suggest, summary[0] if summary else "")


def all_spaces() -> dict[str, SearchSpace]:
    return {name: load(name) for name in names()}


class _PinnedTrial:
    """An Optuna trial whose parameters named in ``pinned`` take those values without being sampled.

    A sweep's ``--flag`` values are pinned: the sampler never models a dimension that does not vary,
    the Optuna study records only what was sampled, and conditional branches follow the pinned value.
    """

    def __init__(self, trial: optuna.trial.BaseTrial, pinned: Mapping[str, Any]) -> None:
        self._trial, self._pinned = trial, pinned

    def __getattr__(self, name: str) -> Any:
        return getattr(self._trial, name)

    def _suggest(self, kind: str, name: str, *args: Any, **kwargs: Any) -> Any:
        if name in self._pinned:
            return self._pinned[name]
        return getattr(self._trial, kind)(name, *args, **kwargs)

    def suggest_float(self, name: str, *args: Any, **kwargs: Any) -> float:
        return self._suggest("suggest_float", name, *args, **kwargs)

    def suggest_int(self, name: str, *args: Any, **kwargs: Any) -> int:
        return self._suggest("suggest_int", name, *args, **kwargs)

    def suggest_categorical(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self._suggest("suggest_categorical", name, *args, **kwargs)


def _pin(trial: optuna.trial.BaseTrial, pinned: Mapping[str, Any] | None) -> optuna.trial.BaseTrial:
    return _PinnedTrial(trial, pinned) if pinned else trial  # type: ignore[return-value]


def suggest_flags(trial: optuna.trial.BaseTrial, method: str,
                  pinned: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The define-by-run function a sweep hands to Optuna (module level, so it pickles)."""
    return load(method).suggest(_pin(trial, pinned))


def parameters(space: SearchSpace, draws: int = 64) -> dict[str, optuna.distributions.BaseDistribution]:
    """The space's parameters and distributions, conditional ones included (seen over random draws)."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    found: dict[str, optuna.distributions.BaseDistribution] = {}
    for _ in range(draws):
        trial = study.ask()
        space.suggest(trial)
        found.update(trial.distributions)
        study.tell(trial, 0.0)
    return found


def trial_params(flags: Mapping[str, Any]) -> dict[str, Any]:
    """Trial parameters that make ``suggest`` reproduce ``flags``: the flags plus the gates."""
    return {**flags, **{gate: derive(flags) for gate, derive in GATES.items()}}


def _outside(value: Any, dist: optuna.distributions.BaseDistribution) -> bool:
    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        return value not in dist.choices
    low, high = dist.low, dist.high
    if not low <= value <= high:
        return True
    step = getattr(dist, "step", None)
    return step is not None and not math.isclose((value - low) / step, round((value - low) / step),
                                                 abs_tol=1e-8)


class _ReplayTrial(optuna.trial.FixedTrial):
    """A FixedTrial that names the parameter whose value is not among a categorical's choices."""

    def __init__(self, params: dict[str, Any]) -> None:
        super().__init__(params)
        self.given = params

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any:
        value = self.given.get(name)
        if name in self.given and value not in choices:
            raise SpaceError(f"{name}={value!r} not in {list(choices)}")
        return super().suggest_categorical(name, choices)


def replay(space: SearchSpace, flags: Mapping[str, Any],
           pinned: Mapping[str, Any] | None = None) -> optuna.trial.FixedTrial:
    """Run ``space`` on the trial that ``flags`` describe; SpaceError if a value lies outside it.

    Parameters named in ``pinned`` take its values and are left out of the trial's params."""
    trial = _ReplayTrial(trial_params(flags))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # out-of-range floats: reported below, all at once
            space.suggest(_pin(trial, pinned))
    except SpaceError as err:
        raise SpaceError(f"{space.name}: {err}") from None
    outside = [f"{name}={trial.params[name]!r} not in {dist}" for name, dist in trial.distributions.items()
               if _outside(trial.params[name], dist)]
    if outside:
        raise SpaceError(f"{space.name}: " + "; ".join(outside))
    return trial


def match(config: Config) -> str:
    """The method whose fixed flags ``config`` has; the most specific one when several fit."""
    fitting = {name: len(space.fixed) for name, space in all_spaces().items()
               if all(getattr(config, flag) == value for flag, value in space.fixed.items())}
    if not fitting:
        raise SpaceError("no search space's fixed flags match this configuration")
    best = max(fitting.values())
    winners = sorted(name for name, size in fitting.items() if size == best)
    if len(winners) > 1:
        raise SpaceError(f"ambiguous method: {', '.join(winners)} all match")
    return winners[0]
