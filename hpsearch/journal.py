"""The sweep's Optuna study on disk: a journal file that optuna-dashboard opens directly.

The searcher itself keeps its study in memory (Ray pickles it with the experiment and restores
it on ``--resume``); finished trials are mirrored here with their parameters, distributions,
per-task values and outcome.  A persistent storage inside the searcher would not survive a
killed driver: the pickled searcher would be older than the file.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState, create_trial

import search_spaces
from hpsearch.trial import FAILED, FINISHED

JOURNAL = "optuna.journal"
RAY_ID = "ray_trial_id"
STATES = {FINISHED: TrialState.COMPLETE, FAILED: TrialState.FAIL}  # anything else: PRUNED


def open_study(path: Path, name: str) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(path)))
    return optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True)


def mirrored_ids(study: optuna.Study) -> set[str]:
    return {t.user_attrs.get(RAY_ID) for t in study.get_trials(deepcopy=False)} - {None}


def _attribute(value: Any) -> Any:
    """JSON-safe user attribute (the journal is JSON lines; -inf would not be portable)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def mirror(study: optuna.Study, method: str, config: dict[str, Any], row: dict[str, Any],
           objective: float | None, intermediate: dict[int, float],
           pinned: dict[str, Any] | None = None) -> None:
    """Add one ended trial: its parameters and distributions come from replaying its space.

    Flags the sweep pinned (``--flag``) were not sampled: they are user attributes, not parameters."""
    replayed = search_spaces.replay(search_spaces.load(method), config, pinned)
    state = STATES.get(row["state"], TrialState.PRUNED)
    value = objective if state == TrialState.COMPLETE and objective is not None else None
    if state == TrialState.COMPLETE and (value is None or not math.isfinite(value)):
        state = TrialState.FAIL
    attrs = {RAY_ID: row["trial_id"], **{k: _attribute(v) for k, v in row.items()
                                        if k not in replayed.params and k != "trial_id"}}
    study.add_trial(create_trial(
        state=state, value=value, params=replayed.params, distributions=replayed.distributions,
        user_attrs=attrs,
        intermediate_values={t: v for t, v in intermediate.items() if math.isfinite(v)}))
