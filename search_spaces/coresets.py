"""Coreset replay: a few stored samples per earlier task, replayed with a distillation loss."""
from __future__ import annotations

from typing import Any

from optuna.trial import BaseTrial

from search_spaces._common import best_models, selecting, training

FIXED = {**selecting("replay"), "multi_head": True}


def suggest(trial: BaseTrial) -> dict[str, Any]:
    return {
        **training(trial),
        **best_models(trial),
        "coreset_size": trial.suggest_categorical("coreset_size", [50, 100, 200, 500, 1000]),
        "replay_distill_reg": trial.suggest_float("replay_distill_reg", 1e-2, 1e2, log=True),
    }
