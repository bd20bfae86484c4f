"""Fine-tuning: one multi-head network trained on each task in turn, nothing against forgetting."""
from __future__ import annotations

from typing import Any

from optuna.trial import BaseTrial

from search_spaces._common import best_models, orthogonal, training

FIXED = {"multi_head": True}


def suggest(trial: BaseTrial) -> dict[str, Any]:
    return {**training(trial), **orthogonal(trial), **best_models(trial)}
