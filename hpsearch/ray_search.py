"""The sweep's searcher: Ray's OptunaSearch, plus what it cannot see in a result, and populations.

Imported by ``hpsearch.ray_adapter`` (which sets Ray's environment first), never on its own.
"""
from __future__ import annotations

import functools
import warnings
from typing import Any

import optuna
from ray.tune.search import ConcurrencyLimiter, Searcher
from ray.tune.search.optuna import OptunaSearch

import search_spaces
from hpsearch import grid, population
from hpsearch.trial import FAILED, TrialPlan, objectives


class SweepSearch(OptunaSearch):
    """Ray's OptunaSearch, plus the outcomes it cannot see in a result.

    A pruned run's last report has no objective (Ray's class would raise on it, or with two objectives
    tell Optuna [None, None] as COMPLETE) and ends the Optuna trial PRUNED; a failed run's report
    carries -inf and ends it FAIL.
    """

    def _reported(self, result: dict) -> bool:
        """Whether a report carries every objective (``metric`` is a list with two objectives)."""
        keys = self.metric if isinstance(self.metric, list) else [self.metric]
        return all(key in result for key in keys)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if self._reported(result):
            with warnings.catch_warnings():  # a trial rerun after --resume reports its tasks again
                warnings.filterwarnings("ignore", message="The reported value is ignored")
                super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if result and result.get("state") == FAILED:
            result, error = None, True
        elif result and not self._reported(result):
            result = None  # pruned
        super().on_trial_complete(trial_id, result, error)


class PopulationSearch(SweepSearch):
    """Asks Optuna ``size`` times per Ray trial (``hpsearch.population``) and tells each member's outcome.

    Its own state lives in attributes, so OptunaSearch's save/restore (a pickle of ``__dict__``)
    keeps it across --resume."""

    def __init__(self, size: int, total: int, **options: Any) -> None:
        super().__init__(**options)
        self.size, self.total, self.asked = size, total, 0
        self.member_ids: dict[str, list[str]] = {}

    def suggest(self, trial_id: str) -> dict | None:
        count = min(self.size, self.total - self.asked)
        if count <= 0:
            return Searcher.FINISHED
        ids = [population.member_id(trial_id, k) for k in range(count)]
        members = [super().suggest(ids[0])]
        shared = population.shared_params(self._ot_trials[ids[0]].params)
        for member in ids[1:]:
            self._ot_study.enqueue_trial(shared)
            members.append(super().suggest(member))
        self.asked += count
        self.member_ids[trial_id] = ids
        return {population.MEMBERS: members}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        for member, metrics in zip(self.member_ids.get(trial_id, []), result.get(population.MEMBERS) or []):
            if "tasks_done" in metrics:  # SweepSearch.on_trial_result reads only reports with the objectives
                super().on_trial_result(member, {**metrics, "training_iteration": metrics["tasks_done"]})

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        reported = (result or {}).get(population.MEMBERS) or []
        for k, member in enumerate(self.member_ids.pop(trial_id, [])):
            metrics = reported[k] if k < len(reported) else None
            super().on_trial_complete(member, metrics, error=error or metrics is None)


def sampler_options(sampler: str, seed: int) -> dict[str, Any]:
    """OptunaSearch's arguments for ``--sampler``: its own seeded TPE, or Optuna's seeded RandomSampler."""
    return {"seed": seed} if sampler == "tpe" else {"sampler": optuna.samplers.RandomSampler(seed=seed)}


def searcher(plan: TrialPlan, seed: int, max_concurrent: int | None, size: int = 1, total: int = 0,
             first: list[dict[str, Any]] | None = None, sampler: str = "tpe") -> Searcher:
    """OptunaSearch's own seeded TPE sampler, maximising one objective or two (``--metric during,final``);
    a grid sweep's GridSampler instead (``hpsearch.grid``).  ``first``: trial parameters to run first
    (``--warm-start``; OptunaSearch enqueues them in its study).

    Two objectives keep TPE, which Optuna runs multi-objective (MOTPE): it models the front after 10
    random start-up trials, where NSGA-II samples its whole first generation (50 trials by default) at
    random, more than most sweeps run.  ``sampler="random"``: Optuna's RandomSampler instead of TPE."""
    options = grid.search_options(plan.grid, seed) if plan.grid else {
        "space": functools.partial(search_spaces.suggest_flags, method=plan.method, pinned=plan.base_flags),
        **sampler_options(sampler, seed)}
    keys = objectives(plan.metric)
    metric, mode = (keys, ["max"] * len(keys)) if len(keys) > 1 else (keys[0], "max")
    if size > 1:
        searcher = PopulationSearch(size, total, metric=metric, mode=mode, points_to_evaluate=first, **options)
    else:
        searcher = SweepSearch(metric=metric, mode=mode, points_to_evaluate=first, **options)
    return ConcurrencyLimiter(searcher, max_concurrent) if max_concurrent else searcher
