"""Masking + SI: per-task masks of the recurrent units, SI on the weights they share."""
from __future__ import annotations

from typing import Any

from optuna.trial import BaseTrial

from search_spaces._common import training
from search_spaces.masking import mask
from search_spaces.si import si

FIXED = {"use_masks": True, "use_si": True, "multi_head": True, "no_context_mod_outputs": True,
         "dont_softplus_gains": True}


def suggest(trial: BaseTrial) -> dict[str, Any]:
    return {**training(trial), **mask(trial), **si(trial)}
