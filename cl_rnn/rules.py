"""Flag rules: what the study rejects, what it warns about, and what cl-rnn refuses.

``check(config)`` raises :class:`ConfigError` with one line naming the flag and the
reason; it runs before any data is loaded or any network is built.  ``from_argv`` parses a
command line into a checked :class:`Config`.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import warnings
from typing import Sequence

from cl_rnn.config import FIELDS, Config, ConfigError, build_parser
from cl_rnn.methods import registry

__all__ = ["ConfigError", "check", "check_data", "criterion_stop", "during_criteria", "from_argv", "int_list"]

# Flags of code paths that no published line uses; cl-rnn refuses them when changed.
UNSUPPORTED = {
    "old_hnet": "the old hypernetwork (use --use_new_hnet --nh_hnet_type=chunked_hmlp)",
    "replay_decoder": "generative replay (use --coreset_size)",
}
UNSUPPORTED_FLAGS = {
    **{f: UNSUPPORTED["old_hnet"] for f in (
        "hyper_chunks", "hnet_arch", "hnet_act", "temb_size", "emb_size", "hnet_noise_dim",
        "hnet_dropout_rate", "temb_std", "sa_hnet_num_layers", "sa_hnet_filters", "sa_hnet_kernels",
        "sa_hnet_attention_layers")},
    **{f: UNSUPPORTED["replay_decoder"] for f in (
        "replay_pm_strength", "replay_rec_strength", "replay_true_data", "latent_dim", "latent_std",
        "dec_srnn_rec_layers", "dec_srnn_pre_fc_layers", "dec_srnn_post_fc_layers",
        "dec_srnn_no_fc_out", "dec_srnn_rec_type", "dec_net_act", "dec_no_bias", "all_task_softmax")},
    **{f: "a deconvolutional or structured hypernetwork" for f in (
        "nh_hdeconv_shape", "nh_hdeconv_num_layers", "nh_hdeconv_filters", "nh_hdeconv_kernels",
        "nh_hdeconv_attention_layers", "nh_shmlp_chunk_sizes", "nh_shmlp_chunk_fc_layers")},
    **{f: "hypernetwork-generated context modulation (use --use_masks)" for f in (
        "use_context_mod", "context_mod_inputs", "context_mod_post_activation", "context_mod_last_step",
        "checkpoint_context_mod", "context_mod_init", "offset_gains", "context_mod_per_ts",
        "sparsify_context_mod", "sparsification_reg_strength", "sparsification_reg_type")},
    "nh_use_cond_chunk_embs": "task-conditional chunk embeddings",
    "nh_hnet_specnorm": "spectral normalisation in the hypernetwork",
    "nh_separate_out_head": "heads outside the hypernetwork",
    "hyper_fan_init": "hyperfan initialisation",
    "show_plots": "interactive plots (use `hpsearch report`)",
    "classification": "regression tasks",
    "store_activations": "storing activations",
    "train_only_heads_after_first": "head-only training",
    "dont_train_heads": "frozen heads",
    "train_tnet_once": "training the main net on the first task only",
    "reinit_tnet": "reinitialising the main net per task",
    "calc_hnet_reg_targets_online": "online hypernetwork targets",
    "last_task_only": "training on the last task only",
}

def int_list(text: str, flag: str) -> list[int]:
    """Parse a comma list such as ``--rnn_arch="32,32"``; empty text is an empty list."""
    text = text.strip().strip('"').strip("'")
    if not text:
        return []
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise ConfigError(f"--{flag}: expected a comma list of integers, got {text!r}") from None
    if any(v <= 0 for v in values):
        raise ConfigError(f"--{flag}: layer sizes must be positive, got {text!r}")
    return values


def during_criteria(config: Config) -> list[float]:
    """One criterion per task but the last (-1: off for that task)."""
    try:
        values = [float(v) for v in config.during_acc_criterion.split(",")]
    except ValueError:
        raise ConfigError(f"--during_acc_criterion: expected numbers, got {config.during_acc_criterion!r}") from None
    if any(v != -1 and not 0 <= v <= 100 for v in values):
        raise ConfigError(f"--during_acc_criterion: accuracies are percentages in [0, 100] (or -1: off), "
                          f"got {config.during_acc_criterion!r}")
    if len(values) == 1:
        return values * (config.num_tasks - 1)
    if len(values) != config.num_tasks - 1:
        raise ConfigError(f"--during_acc_criterion: {len(values)} values for {config.num_tasks} tasks; give one "
                          f"value for all tasks, or one for each task but the last ({config.num_tasks - 1} here)")
    return values


CRITERION_STOP = "during_acc_criterion"  # how the stop reason of a run stopped by it begins


def criterion_stop(config: Config, task: int, accuracy: float) -> str | None:
    """The stop reason when ``task``'s during ``accuracy`` (%) is below its criterion, else None."""
    criterion = during_criteria(config)[task] if task < config.num_tasks - 1 else -1
    if criterion != -1 and accuracy < criterion:
        return f"{CRITERION_STOP}: task {task} reached {accuracy:.2f}% < {criterion:g}%"
    return None


def _check_unsupported(config: Config) -> None:
    for name, what in UNSUPPORTED_FLAGS.items():
        if getattr(config, name) != FIELDS[name].default:
            raise ConfigError(f"--{name}: cl-rnn does not implement {what}")


def _check_finite(config: Config) -> None:
    """nan and inf make no sense for any float flag (a strength, a rate, a fraction or -1 for off)."""
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"--{f.name}: must be a finite number, got {value!r}")


def _check_ranges(config: Config) -> None:
    positive = ["num_tasks", "num_classes_per_task", "batch_size", "n_iter", "lr", "val_iter",
                "nh_chmlp_chunk_size", "nh_chunk_emb_size", "nh_cond_emb_size"]
    for name in positive:
        if not getattr(config, name) > 0:
            raise ConfigError(f"--{name}: must be positive, got {getattr(config, name)!r}")
    non_negative = ["weight_decay", "beta", "ewc_lambda", "ewc_gamma", "si_lambda", "replay_distill_reg",
                    "val_set_size", "std_normal_temb", "std_normal_emb"]
    for name in non_negative:
        if getattr(config, name) < 0:
            raise ConfigError(f"--{name}: must not be negative, got {getattr(config, name)!r}")
    for name in ("random_seed", "data_random_seed"):
        if not 0 <= getattr(config, name) < 2**32:
            raise ConfigError(f"--{name}: must lie in [0, 2**32), got {getattr(config, name)!r}")
    if not 0 <= config.adam_beta1 < 1:
        raise ConfigError(f"--adam_beta1: must lie in [0, 1), got {config.adam_beta1!r}")
    if config.clip_grad_norm != -1 and config.clip_grad_norm <= 0:
        raise ConfigError(f"--clip_grad_norm: must be positive or -1 (off), got {config.clip_grad_norm!r}")
    if config.orthogonal_hh_reg != -1 and config.orthogonal_hh_reg < 0:
        raise ConfigError(f"--orthogonal_hh_reg: must be >= 0 or -1 (off), got {config.orthogonal_hh_reg!r}")
    if not 0 <= config.mask_fraction < 1:
        raise ConfigError(f"--mask_fraction: must lie in [0, 1), got {config.mask_fraction!r}")
    if config.nh_hnet_dropout_rate != -1 and not 0 <= config.nh_hnet_dropout_rate < 1:
        raise ConfigError(f"--nh_hnet_dropout_rate: must lie in [0, 1) or be -1, got {config.nh_hnet_dropout_rate!r}")
    for name in ("n_fisher", "tbptt_fisher", "hnet_reg_batch_size"):
        value = getattr(config, name)
        if value != -1 and value < 0:
            raise ConfigError(f"--{name}: must be >= 0 or -1, got {value!r}")
    if config.coreset_size != -1 and config.coreset_size <= 0:
        raise ConfigError(f"--coreset_size: must be positive or -1, got {config.coreset_size!r}")
    if config.use_replay and config.coreset_size > 100_000:
        raise ConfigError(f"--coreset_size: {config.coreset_size} is larger than any task's training set")
    if not int_list(config.rnn_arch, "rnn_arch"):
        raise ConfigError("--rnn_arch: needs at least one recurrent layer")
    int_list(config.srnn_pre_fc_layers, "srnn_pre_fc_layers")
    int_list(config.srnn_post_fc_layers, "srnn_post_fc_layers")
    if config.hnet_all:
        int_list(config.nh_hmlp_arch, "nh_hmlp_arch")
    during_criteria(config)


def _check_methods(config: Config) -> None:
    """What the methods declare (``cl_rnn.methods.registry``): their own rules, then the study's exclusions."""
    reason = registry.refusal(config)
    if reason:
        raise ConfigError(reason)


def _warn(config: Config) -> None:
    def say(message: str) -> None:
        warnings.warn(message, stacklevel=3)

    if config.use_ewc and config.ewc_lambda == 0:
        say("--use_ewc with --ewc_lambda=0: EWC has no effect")
    if config.use_si and config.si_lambda == 0:
        say("--use_si with --si_lambda=0: SI has no effect")
    if config.si_task_loss_only and not config.use_si:
        say("--si_task_loss_only without --use_si has no effect")
    if (config.use_ewc or config.use_si) and not config.multi_head:
        say("EWC/SI without --multi_head: the shared head is regularised too")
    if config.beta != FIELDS["beta"].default and (config.train_from_scratch or config.multitask):
        say("--beta has no effect with --train_from_scratch or --multitask")
    if config.during_acc_criterion != "-1" and config.multitask:
        say("--during_acc_criterion has no effect with --multitask")
    if config.use_masks and not (config.no_context_mod_outputs and config.dont_softplus_gains):
        say("--use_masks implies --no_context_mod_outputs and --dont_softplus_gains")


def check_data(config: Config, train_sizes: list[int]) -> None:
    """The rules that need the data (training samples per task); run right after loading, before training."""
    if not (config.use_replay and train_sizes):
        return
    smallest = min(train_sizes)
    if config.coreset_size > smallest:
        raise ConfigError(f"--coreset_size: {config.coreset_size} is more than the {smallest} "
                          f"training samples of task {train_sizes.index(smallest)}")


def check(config: Config) -> Config:
    """Raise ConfigError for a config that cannot run; warn on ineffective ones."""
    for f in dataclasses.fields(config):
        if f.metadata["choices"] and getattr(config, f.name) not in f.metadata["choices"]:
            raise ConfigError(f"--{f.name}: invalid choice {getattr(config, f.name)!r}")
    _check_finite(config)
    _check_unsupported(config)
    _check_methods(config)
    _check_ranges(config)
    _warn(config)
    return config


def from_argv(argv: Sequence[str], parser: argparse.ArgumentParser | None = None) -> Config:
    """Parse a command line (without the program name). Errors exit like argparse does."""
    parser = parser or build_parser()
    namespace = parser.parse_args(list(argv))
    config = Config(**vars(namespace))
    try:
        check(config)
    except ConfigError as err:
        parser.error(str(err))
    return config
