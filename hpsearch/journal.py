"""The sweep's Optuna study on disk: a journal file that optuna-dashboard opens directly.

A ``--metric during,final`` sweep is a two-objective study (directions maximize, maximize; metric
names during and final), each finished trial with its two values: the dashboard draws its Pareto front.

The searcher itself keeps its study in memory (Ray pickles it with the experiment and restores
it on ``--resume``); finished trials are mirrored here with their parameters, distributions,
per-task values and outcome.  A persistent storage inside the searcher would not survive a
killed driver: the pickled searcher would be older than the file.
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState, create_trial

import search_spaces
from hpsearch.grid import replay as replay_grid
from hpsearch.trial import FAILED, FINISHED, metric_names

JOURNAL = "optuna.journal"
RAY_ID = "ray_trial_id"
STATES = {FINISHED: TrialState.COMPLETE, FAILED: TrialState.FAIL}  # anything else: PRUNED


def open_study(path: Path, name: str, metric: str = "final") -> optuna.Study:
    """The sweep's study, created for ``metric`` (``hpsearch.trial.METRICS``) when new; an existing one
    keeps its directions."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(path)))
    names = metric_names(metric)
    study = optuna.create_study(study_name=name, storage=storage, directions=["maximize"] * len(names),
                                load_if_exists=True)
    if study.metric_names is None and len(study.directions) == len(names):
        with warnings.catch_warnings():  # set_metric_names is experimental (Optuna 3.2+)
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(names)
    return study


def mirrored_ids(study: optuna.Study) -> set[str]:
    return {t.user_attrs.get(RAY_ID) for t in study.get_trials(deepcopy=False)} - {None}


def _attribute(value: Any) -> Any:
    """JSON-safe user attribute (the journal is JSON lines; -inf would not be portable)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def mirror(study: optuna.Study, method: str, config: dict[str, Any], row: dict[str, Any],
           values: list[float | None] | None, intermediate: dict[int, float],
           pinned: dict[str, Any] | None = None, grid: list[dict[str, Any]] | None = None) -> None:
    """Add one ended trial: its parameters and distributions come from replaying its space (a grid sweep's:
    its grid point, ``hpsearch.grid.replay``); ``values`` its objectives, one per direction of the study (a
    finished trial without all of them is FAIL).

    Flags the sweep pinned (``--flag``) were not sampled: they are user attributes, not parameters."""
    replayed = replay_grid(grid, config) if grid else search_spaces.replay(search_spaces.load(method), config, pinned)
    state = STATES.get(row["state"], TrialState.PRUNED)
    known = values is not None and len(values) == len(study.directions) and all(
        v is not None and math.isfinite(v) for v in values)
    if state == TrialState.COMPLETE and not known:
        state = TrialState.FAIL
    attrs = {RAY_ID: row["trial_id"], **{k: _attribute(v) for k, v in row.items()
                                        if k not in replayed.params and k != "trial_id"}}
    study.add_trial(create_trial(
        state=state, values=values if state == TrialState.COMPLETE else None, params=replayed.params,
        distributions=replayed.distributions, user_attrs=attrs,
        intermediate_values={t: v for t, v in intermediate.items() if math.isfinite(v)}))
