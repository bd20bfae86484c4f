"""Online EWC with the task identity appended to every input step."""
from __future__ import annotations

from typing import Any

from optuna.trial import BaseTrial

from search_spaces._common import training
from search_spaces.ewc import ewc

FIXED = {"use_ewc": True, "multi_head": True, "input_task_identity": True}


def suggest(trial: BaseTrial) -> dict[str, Any]:
    return {**training(trial), **ewc(trial)}
