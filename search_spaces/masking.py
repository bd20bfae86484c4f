"""Masking: a fixed random binary mask of the recurrent units per task."""
from __future__ import annotations

from typing import Any

from optuna.trial import BaseTrial

from search_spaces._common import selecting, training

# The study's line also sets si_lambda=0 (inert without --use_si), kept so exports match it.
FIXED = {**selecting("masks"), "multi_head": True, "si_lambda": 0.0}


def mask(trial: BaseTrial) -> dict[str, Any]:
    """mask_fraction is the fraction of units switched off per task."""
    return {"mask_fraction": trial.suggest_float("mask_fraction", 0.1, 0.9, step=0.1)}


def suggest(trial: BaseTrial) -> dict[str, Any]:
    return {**training(trial), **mask(trial)}
