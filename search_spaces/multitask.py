"""Multitask: all tasks trained jointly on one multi-head network; the upper reference."""
from __future__ import annotations

from typing import Any

from optuna.trial import BaseTrial

from search_spaces._common import orthogonal, selecting, training

FIXED = {**selecting("multitask"), "multi_head": True}


def suggest(trial: BaseTrial) -> dict[str, Any]:
    return {**training(trial), **orthogonal(trial)}
