"""Online EWC: a Fisher-weighted quadratic penalty anchors the weights of earlier tasks."""
from __future__ import annotations

from typing import Any

from optuna.trial import BaseTrial

from search_spaces._common import selecting, training

FIXED = {**selecting("ewc"), "multi_head": True}


def ewc(trial: BaseTrial) -> dict[str, Any]:
    return {
        "ewc_lambda": trial.suggest_float("ewc_lambda", 1e-1, 1e5, log=True),
        "ewc_gamma": trial.suggest_categorical("ewc_gamma", [0.9, 0.99, 1.0]),
    }


def suggest(trial: BaseTrial) -> dict[str, Any]:
    return {**training(trial), **ewc(trial)}
