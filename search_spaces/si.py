"""Synaptic Intelligence: a path-integral importance per weight, penalising change on old tasks."""
from __future__ import annotations

from typing import Any

from optuna.trial import BaseTrial

from search_spaces._common import selecting, training

FIXED = {**selecting("si"), "multi_head": True}


def si(trial: BaseTrial) -> dict[str, Any]:
    return {
        "si_lambda": trial.suggest_float("si_lambda", 1e-2, 1e4, log=True),
        "si_task_loss_only": trial.suggest_categorical("si_task_loss_only", [False, True]),
    }


def suggest(trial: BaseTrial) -> dict[str, Any]:
    return {**training(trial), **si(trial)}
