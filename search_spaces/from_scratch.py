"""From scratch: a fresh network for every task (no transfer, no forgetting); the study's reference."""
from __future__ import annotations

from typing import Any

from optuna.trial import BaseTrial

from search_spaces._common import selecting, training

# The study's line also zeroes the EWC/SI strengths; inert here, kept so exports match it.
FIXED = {**selecting("from_scratch"), "si_lambda": 0.0, "ewc_lambda": 0.0, "ewc_gamma": 0.0, "n_fisher": 0}


def suggest(trial: BaseTrial) -> dict[str, Any]:
    return training(trial)
