"""Masking + SI: per-task masks of the recurrent units, SI on the weights they share."""
from __future__ import annotations

from typing import Any

from optuna.trial import BaseTrial

from search_spaces._common import selecting, training
from search_spaces.masking import mask
from search_spaces.si import si

FIXED = {**selecting("masks", "si"), "multi_head": True}


def suggest(trial: BaseTrial) -> dict[str, Any]:
    return {**training(trial), **mask(trial), **si(trial)}
