"""``hpsearch run --warm-start``: the study's published line of the method is the sweep's first trial.

The line (``search_spaces._published``) is replayed in the method's space (``search_spaces.replay``) and its
trial parameters are enqueued in the searcher's Optuna study (OptunaSearch's ``points_to_evaluate``, that is
``study.enqueue_trial``): the first trial runs them and the sampler learns from its result like any other.
Only the space's parameters make the point: the flags the sweep sets (``--n-iter``, ``--seed``, ``--data``)
and every ``--flag`` keep the sweep's values, and a ``--flag`` naming a parameter of the point wins over it.
"""
from __future__ import annotations

from typing import Any, Mapping

import search_spaces
from cl_rnn.rules import ConfigError
from hpsearch.trial import TrialPlan
from search_spaces import _published as published


def _published_flags(method: str) -> dict[str, Any]:
    if method not in published.LINES:
        raise search_spaces.SpaceError(f"--warm-start: the study published no line for method {method!r} "
                                       f"(it did for {', '.join(published.LINES)})")
    return published.flags(method)


def params(plan: TrialPlan) -> dict[str, Any]:
    """The trial parameters of the published point: gates included, the sweep's pinned flags left out."""
    space = search_spaces.load(plan.method)
    return search_spaces.replay(space, _published_flags(plan.method), plan.base_flags).params


def _problem(plan: TrialPlan) -> str:
    """Why the published point cannot run with the sweep's flags, or ""."""
    try:
        plan.config(params(plan), out_dir="")
    except (ConfigError, search_spaces.SpaceError) as err:
        return str(err)
    return ""


def points(plan: TrialPlan) -> list[dict[str, Any]]:
    """OptunaSearch's ``points_to_evaluate``: the published point, or none when it cannot run."""
    return [] if _problem(plan) else [params(plan)]


def notices(plan: TrialPlan, flags: Mapping[str, Any]) -> list[str]:
    """The line a new sweep prints: which line runs first, or the user's ``flags`` (--flag) that change or
    rule out the published point.  SpaceError when the study published no line for the method."""
    line = _published_flags(plan.method)
    problem = _problem(plan)
    if problem:
        return [f"hpsearch run: warning: --warm-start: the published {plan.method} line cannot run with this "
                f"sweep's flags ({problem}); the sweep starts without it"]
    space = search_spaces.load(plan.method)
    replaced = [f"{name}={flags[name]!r} (--flag; published {line[name]!r})"
                for name in search_spaces.replay(space, line).params if name in flags and flags[name] != line[name]]
    if replaced:
        return [f"hpsearch run: warning: --warm-start: the first trial is the published {plan.method} line except "
                + ", ".join(replaced)]
    return [f"hpsearch: --warm-start: the first trial runs the study's published {plan.method} line"]
