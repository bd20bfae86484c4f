"""Online EWC with the task identity appended to every input step."""
from __future__ import annotations

from typing import Any

from optuna.trial import BaseTrial

from search_spaces._common import selecting, training
from search_spaces.ewc import ewc

FIXED = {**selecting("ewc", "task_identity"), "multi_head": True}


def suggest(trial: BaseTrial) -> dict[str, Any]:
    return {**training(trial), **ewc(trial)}
