"""Parameter groups shared by several methods' spaces.

Ranges are wide enough to hold every value of the study's published lines and stay where the
study's networks train at all (e.g. lr from 1e-5 to 1e-2).  Flags the study treats as "-1: off"
are either a categorical choice including -1 (``clip_grad_norm``) or a conditional parameter
behind a gate (``orthogonal_hh_reg``).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from optuna.trial import BaseTrial

from cl_rnn.methods import registry

BATCH_SIZES = [32, 64, 128, 256]
CLIP_GRAD_NORMS = [-1.0, 0.5, 1.0, 5.0]
RNN_ARCHS = ["8", "16", "32", "64", "128", "256"]

# Trial parameters that are not flags: a gate decides whether a conditional flag is searched.
# Each maps the flags a run used back to the gate's value (to replay a run in its space).
GATES: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "use_orthogonal_hh_reg": lambda flags: flags.get("orthogonal_hh_reg", -1.0) != -1.0,
}


def selecting(*methods: str) -> dict[str, Any]:
    """The flags that select ``methods`` (names in ``cl_rnn.methods.registry``): a space's FIXED starts here."""
    flags: dict[str, Any] = {}
    for name in methods:
        flags.update(registry.get(name).selecting_flags())
    return flags


def training(trial: BaseTrial) -> dict[str, Any]:
    """Optimiser and network size: what every method tunes."""
    return {
        "lr": trial.suggest_float("lr", 1e-5, 1e-2, log=True),
        "batch_size": trial.suggest_categorical("batch_size", BATCH_SIZES),
        "clip_grad_norm": trial.suggest_categorical("clip_grad_norm", CLIP_GRAD_NORMS),
        "rnn_arch": trial.suggest_categorical("rnn_arch", RNN_ARCHS),
    }


def orthogonal(trial: BaseTrial) -> dict[str, Any]:
    """Orthogonal init of the hidden-to-hidden blocks, and (gated) the orthogonality penalty."""
    flags: dict[str, Any] = {"orthogonal_hh_init": trial.suggest_categorical("orthogonal_hh_init", [False, True])}
    if trial.suggest_categorical("use_orthogonal_hh_reg", [False, True]):
        flags["orthogonal_hh_reg"] = trial.suggest_float("orthogonal_hh_reg", 1e-3, 10.0, log=True)
    else:
        flags["orthogonal_hh_reg"] = -1.0
    return flags


def best_models(trial: BaseTrial) -> dict[str, Any]:
    """Restore each task's best validation checkpoint at its end."""
    return {"use_best_models": trial.suggest_categorical("use_best_models", [False, True])}
