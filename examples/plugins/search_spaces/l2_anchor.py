"""L2 anchor: fine-tuning pulled toward the previous task's weights (an example plugin)."""
from __future__ import annotations

from typing import Any

from optuna.trial import BaseTrial

from search_spaces._common import selecting, training

FIXED = {**selecting("l2_anchor"), "multi_head": True}


def suggest(trial: BaseTrial) -> dict[str, Any]:
    return {**training(trial),
            "l2_anchor_strength": trial.suggest_float("l2_anchor_strength", 1e-4, 1.0, log=True)}
