"""Chunked hypernetwork: task embeddings generate all main-network weights, chunk by chunk."""
from __future__ import annotations

from typing import Any

from optuna.trial import BaseTrial

from search_spaces._common import selecting, training

FIXED = {**selecting("hnet"), "multi_head": True}


def hypernetwork(trial: BaseTrial) -> dict[str, Any]:
    return {
        "beta": trial.suggest_float("beta", 1e-3, 1e2, log=True),
        "nh_hmlp_arch": trial.suggest_categorical("nh_hmlp_arch", ["10,10", "25,25", "50,50", "100,100"]),
        "nh_chmlp_chunk_size": trial.suggest_categorical("nh_chmlp_chunk_size", [500, 1000, 2000, 4000]),
        "nh_cond_emb_size": trial.suggest_categorical("nh_cond_emb_size", [8, 16, 32, 64]),
        "nh_chunk_emb_size": trial.suggest_categorical("nh_chunk_emb_size", [8, 16, 32, 64]),
        "std_normal_temb": trial.suggest_categorical("std_normal_temb", [0.1, 1.0]),
        "std_normal_emb": trial.suggest_categorical("std_normal_emb", [0.1, 1.0]),
    }


def suggest(trial: BaseTrial) -> dict[str, Any]:
    return {
        **training(trial),
        **hypernetwork(trial),
        "weight_decay": trial.suggest_categorical("weight_decay", [0.0, 1e-4, 1e-3, 1e-2]),
    }
