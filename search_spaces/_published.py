"""The study's published command lines (its sequential/audioset/README.rst), as data.

``LINES`` maps each method (a search space's name) to the flags of its lines, in the README's order,
without the leading ``python3 train_split_audioset.py``.  A method's first line is its line, the one
``hpsearch run --warm-start`` runs first: the README presents it first in the method's section
(fine-tuning: the 32-unit LSTM at lr 1e-05; coresets: 100 samples per task).  The Online EWC
section holds two methods: the line with ``--input_task_identity`` is ``ewc_task_identity``.
tests/test_search_spaces.py checks this text against the README and each line against its space.
"""
from __future__ import annotations

import dataclasses
import shlex
from typing import Any

from cl_rnn.rules import from_argv

LINES: dict[str, tuple[str, ...]] = {
    "multitask": (
        "--multi_head --num_tasks=10 --num_classes_per_task=10 --batch_size=64 --n_iter=50000 --lr=0.0001 "
        '--clip_grad_norm=1 --rnn_arch="32" --net_act=tanh --use_cuda --multitask --orthogonal_hh_reg=-1',
    ),
    "from_scratch": (
        "--si_lambda=0.0 --ewc_lambda=0.0 --ewc_gamma=0.0 --n_fisher=0 --tbptt_fisher=-1 "
        "--train_from_scratch --num_tasks=10 --num_classes_per_task=10 --batch_size=128 --n_iter=25000 "
        '--lr=0.001 --clip_grad_norm=1 --rnn_arch="32" --net_act=tanh --use_cuda',
    ),
    "finetune": (
        "--multi_head --num_tasks=10 --num_classes_per_task=10 --batch_size=64 --n_iter=50000 --lr=1e-05 "
        '--clip_grad_norm=-1 --rnn_arch="32" --net_act=tanh --use_cuda --orthogonal_hh_reg=0.1',
        "--multi_head --num_tasks=10 --num_classes_per_task=10 --batch_size=64 --n_iter=10000 --lr=0.0001 "
        '--clip_grad_norm=1 --rnn_arch="256" --net_act=tanh --use_cuda',
        "--multi_head --num_tasks=10 --num_classes_per_task=10 --batch_size=64 --n_iter=10000 --lr=0.0001 "
        '--clip_grad_norm=-1 --rnn_arch="128" --net_act=tanh --use_cuda',
        "--multi_head --num_tasks=10 --num_classes_per_task=10 --batch_size=64 --n_iter=25000 --lr=0.0001 "
        '--clip_grad_norm=-1 --rnn_arch="64" --net_act=tanh --use_cuda',
        "--multi_head --num_tasks=10 --num_classes_per_task=10 --batch_size=64 --n_iter=25000 --lr=0.0001 "
        '--clip_grad_norm=1 --rnn_arch="32" --net_act=tanh --use_cuda',
        "--multi_head --num_tasks=10 --num_classes_per_task=10 --batch_size=64 --n_iter=25000 --lr=0.0001 "
        '--clip_grad_norm=-1 --rnn_arch="16" --net_act=tanh --use_cuda',
        "--multi_head --num_tasks=10 --num_classes_per_task=10 --batch_size=64 --n_iter=25000 --lr=0.0001 "
        '--clip_grad_norm=-1 --rnn_arch="8" --net_act=tanh --use_cuda --use_best_models',
        "--multi_head --num_tasks=10 --num_classes_per_task=10 --batch_size=64 --n_iter=25000 --lr=0.0001 "
        '--clip_grad_norm=1 --rnn_arch="32" --net_act=tanh --use_cuda --orthogonal_hh_init '
        "--orthogonal_hh_reg=1.0",
    ),
    "hnet": (
        "--nh_chmlp_chunk_size=2000 --beta=1.0 --multi_head --num_tasks=10 --num_classes_per_task=10 "
        "--batch_size=128 --n_iter=15000 --lr=0.0001 --weight_decay=0.01 --clip_grad_norm=-1 "
        '--rnn_arch="32" --srnn_pre_fc_layers="" --net_act=tanh --nh_hnet_type=chunked_hmlp '
        '--nh_hmlp_arch="10,10" --nh_cond_emb_size=32 --nh_chunk_emb_size=32 --nh_hnet_dropout_rate=-1 '
        "--use_new_hnet --std_normal_temb=1.0 --std_normal_emb=0.1 --use_cuda --hnet_all "
        "--during_acc_criterion=60",
    ),
    "ewc": (
        "--multi_head --num_tasks=10 --num_classes_per_task=10 --batch_size=128 --n_iter=25000 "
        '--lr=0.0001 --clip_grad_norm=-1 --rnn_arch="32" --net_act=tanh --use_cuda --use_ewc '
        "--ewc_lambda=100.0 --n_fisher=-1",
    ),
    "ewc_task_identity": (
        "--multi_head --num_tasks=10 --num_classes_per_task=10 --batch_size=64 --n_iter=25000 --lr=0.0001 "
        '--clip_grad_norm=1 --rnn_arch="32" --net_act=tanh --use_cuda --input_task_identity --use_ewc '
        "--ewc_gamma=1.0 --ewc_lambda=10.0 --n_fisher=-1",
    ),
    "si": (
        "--multi_head --num_tasks=10 --num_classes_per_task=10 --batch_size=64 --n_iter=25000 --lr=0.0001 "
        '--clip_grad_norm=-1 --rnn_arch="32" --net_act=tanh --use_cuda --use_si --si_lambda=1.0 '
        "--si_task_loss_only",
    ),
    "masking": (
        "--no_context_mod_outputs --dont_softplus_gains --si_lambda=0.0 --multi_head --num_tasks=10 "
        "--num_classes_per_task=10 --batch_size=64 --n_iter=25000 --lr=0.0001 --clip_grad_norm=-1 "
        '--rnn_arch="32" --net_act=tanh --use_cuda --use_masks --mask_fraction=0.6 '
        "--during_acc_criterion=25",
    ),
    "masking_si": (
        "--no_context_mod_outputs --dont_softplus_gains --multi_head --num_tasks=10 "
        "--num_classes_per_task=10 --batch_size=64 --n_iter=25000 --lr=0.0001 --clip_grad_norm=1 "
        '--rnn_arch="32" --net_act=tanh --use_cuda --use_masks --mask_fraction=0.4 '
        "--during_acc_criterion=25 --use_si --si_lambda=100.0 --si_task_loss_only",
    ),
    "coresets": (
        "--multi_head --num_tasks=10 --num_classes_per_task=10 --batch_size=64 --n_iter=25000 --lr=0.0001 "
        '--clip_grad_norm=1 --rnn_arch="32" --net_act=tanh --use_cuda --use_best_models --use_replay '
        "--replay_distill_reg=10.0 --coreset_size=100",
        "--multi_head --num_tasks=10 --num_classes_per_task=10 --batch_size=64 --n_iter=10000 --lr=0.0001 "
        '--clip_grad_norm=-1 --rnn_arch="32" --net_act=tanh --use_cuda --use_best_models --use_replay '
        "--replay_distill_reg=0.1 --coreset_size=500",
    ),
}


def line(method: str) -> str:
    """The flags of ``method``'s published line; KeyError for a method the study published none for."""
    return LINES[method][0]


def flags(method: str) -> dict[str, Any]:
    """Every flag of the study's script as ``method``'s published line sets it (the rest at their defaults)."""
    return dataclasses.asdict(from_argv(shlex.split(line(method))))
