"""Every flag of the study's ``train_split_audioset.py``, as one typed dataclass.

Names, defaults and meanings are the study's (see its ``--help``), so any command
line of the study parses verbatim.  Two flags are ours: ``--data`` (an HDF5 dataset,
default: the embedded surrogate) and ``--overwrite``.

``cl_rnn.rules.from_argv`` (which also checks the flags) and ``to_argv`` round-trip exactly:
``from_argv(to_argv(c)) == c``.  The export of sweep winners relies on it.
"""
from __future__ import annotations

import argparse
import dataclasses
import shlex
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, NoReturn, Sequence

from cl_rnn.plugins import method_fields

ACTIVATIONS = ("linear", "sigmoid", "relu", "elu", "tanh")
TS_WEIGHTINGS = ("none", "last", "last_ten_percent", "unpadded", "discount")


class ConfigError(ValueError):
    """A flag value or a combination of flags that cannot run."""


def opt(default: Any, help: str, choices: Sequence[str] | None = None, group: str = "misc"):
    return field(default=default, metadata={"help": help, "choices": choices, "group": group})


@dataclass
class Config:
    # --- continual learning ---------------------------------------------------------
    beta: float = opt(0.005, "Strength of the CL regulariser (hypernetwork output reg).", group="cl")
    train_from_scratch: bool = opt(False, "Rebuild all networks before each task.", group="cl")
    multi_head: bool = opt(False, "One output head per task.", group="cl")
    num_tasks: int = opt(10, "Number of tasks.", group="cl")
    num_classes_per_task: int = opt(10, "Classes per task.", group="cl")
    # --- training -------------------------------------------------------------------
    batch_size: int = opt(64, "Training batch size.", group="train")
    n_iter: int = opt(5000, "Training iterations per task.", group="train")
    lr: float = opt(0.001, "Adam learning rate.", group="train")
    weight_decay: float = opt(0.0, "Adam weight decay (coupled L2).", group="train")
    adam_beta1: float = opt(0.9, "Adam beta1.", group="train")
    clip_grad_norm: float = opt(-1.0, "Clip the total gradient norm to this value (-1: off).", group="train")
    # --- main recurrent network -----------------------------------------------------
    rnn_arch: str = opt("32", "Comma list of recurrent layer sizes.", group="net")
    srnn_pre_fc_layers: str = opt("", "Comma list of fully-connected layers before the RNN.", group="net")
    srnn_post_fc_layers: str = opt("", "Comma list of fully-connected layers after the RNN.", group="net")
    net_act: str = opt("tanh", "Nonlinearity of fc layers and cells.", ("relu", "tanh", "linear"), "net")
    use_vanilla_rnn: bool = opt(False, "Elman cells instead of LSTM cells.", group="net")
    # --- old hypernetwork (not used by any published line) --------------------------
    hyper_chunks: str = opt("-1", "Old hypernetwork output size (unsupported).", group="old_hnet")
    hnet_arch: str = opt("50,50", "Old hypernetwork hidden layers (unsupported).", group="old_hnet")
    hnet_act: str = opt("relu", "Old hypernetwork activation (unsupported).", ACTIVATIONS, "old_hnet")
    temb_size: int = opt(32, "Old hypernetwork task embedding size (unsupported).", group="old_hnet")
    emb_size: int = opt(32, "Old hypernetwork chunk embedding size (unsupported).", group="old_hnet")
    hnet_noise_dim: int = opt(-1, "Old hypernetwork noise input (unsupported).", group="old_hnet")
    hnet_dropout_rate: float = opt(-1.0, "Old hypernetwork dropout (unsupported).", group="old_hnet")
    temb_std: float = opt(-1.0, "Noise on task embeddings (unsupported).", group="old_hnet")
    sa_hnet_num_layers: int = opt(5, "Self-attention hypernetwork (unsupported).", group="old_hnet")
    sa_hnet_filters: str = opt("128,512,256,128", "Self-attention hypernetwork (unsupported).", group="old_hnet")
    sa_hnet_kernels: str = opt("5", "Self-attention hypernetwork (unsupported).", group="old_hnet")
    sa_hnet_attention_layers: str = opt("1,3", "Self-attention hypernetwork (unsupported).", group="old_hnet")
    # --- hypernetwork ("new edition") -------------------------------------------------
    nh_hnet_type: str = opt("hmlp", "Hypernetwork type; cl-rnn implements chunked_hmlp.",
                            ("hmlp", "chunked_hmlp", "structured_hmlp", "hdeconv", "chunked_hdeconv"), "hnet")
    nh_hmlp_arch: str = opt("50,50", "Hidden layers of the hypernetwork MLP.", group="hnet")
    nh_cond_emb_size: int = opt(32, "Task embedding size.", group="hnet")
    nh_chmlp_chunk_size: int = opt(1000, "Weights produced per chunk.", group="hnet")
    nh_chunk_emb_size: int = opt(32, "Chunk embedding size.", group="hnet")
    nh_use_cond_chunk_embs: bool = opt(False, "Task-conditional chunk embeddings (unsupported).", group="hnet")
    nh_hdeconv_shape: str = opt("512,512,3", "Deconv hypernetwork (unsupported).", group="hnet")
    nh_hdeconv_num_layers: int = opt(5, "Deconv hypernetwork (unsupported).", group="hnet")
    nh_hdeconv_filters: str = opt("128,512,256,128", "Deconv hypernetwork (unsupported).", group="hnet")
    nh_hdeconv_kernels: str = opt("5", "Deconv hypernetwork (unsupported).", group="hnet")
    nh_hdeconv_attention_layers: str = opt("1,3", "Deconv hypernetwork (unsupported).", group="hnet")
    nh_hnet_net_act: str = opt("relu", "Hypernetwork activation.", ACTIVATIONS, "hnet")
    nh_hnet_no_bias: bool = opt(False, "No biases in the hypernetwork.", group="hnet")
    nh_hnet_dropout_rate: float = opt(-1.0, "Hypernetwork dropout (-1: off).", group="hnet")
    nh_hnet_specnorm: bool = opt(False, "Spectral norm in the hypernetwork (unsupported).", group="hnet")
    nh_shmlp_chunk_sizes: str = opt("8", "Structured hypernetwork (unsupported).", group="hnet")
    nh_shmlp_chunk_fc_layers: bool = opt(False, "Structured hypernetwork (unsupported).", group="hnet")
    nh_separate_out_head: bool = opt(False, "Task-specific heads outside the hypernetwork (unsupported).", group="hnet")
    use_new_hnet: bool = opt(False, "Use the new-edition hypernetwork (the only one cl-rnn has).", group="hnet")
    # --- initialisation ---------------------------------------------------------------
    std_normal_temb: float = opt(1.0, "Std of the task embeddings at init.", group="init")
    std_normal_emb: float = opt(1.0, "Std of the chunk embeddings at init.", group="init")
    hyper_fan_init: bool = opt(False, "Hyperfan init (unsupported).", group="init")
    # --- evaluation -------------------------------------------------------------------
    val_iter: int = opt(250, "Validate every N iterations.", group="eval")
    val_set_size: int = opt(500, "Validation clips taken from each task's training set.", group="eval")
    # --- miscellaneous ----------------------------------------------------------------
    out_dir: str = opt("", "Run folder (default: results/runs/<time>).")
    use_cuda: bool = opt(False, "Run on the GPU when there is one.")
    loglevel_info: bool = opt(False, "Log at INFO instead of DEBUG.")
    deterministic_run: bool = opt(False, "Deterministic torch algorithms.")
    show_plots: bool = opt(False, "Show plots (unsupported: use hpsearch report).")
    data_random_seed: int = opt(42, "Seed of the class-to-task split and validation split.")
    random_seed: int = opt(42, "Seed of torch, numpy and random.")
    classification: bool = opt(True, "Classification task (the only kind cl-rnn has).")
    store_activations: bool = opt(False, "Store hidden activations (unsupported).")
    multitask: bool = opt(False, "Train all tasks jointly.")
    train_only_heads_after_first: bool = opt(False, "Train only the heads after task 0 (unsupported).")
    dont_train_heads: bool = opt(False, "Freeze the heads (unsupported).")
    train_tnet_once: bool = opt(False, "Train the main net on task 0 only (unsupported).")
    reinit_tnet: bool = opt(False, "Reinitialise the main net per task (unsupported).")
    input_task_identity: bool = opt(False, "Append a one-hot task id to every input step.")
    use_masks: bool = opt(False, "Fixed binary per-task masks on the recurrent units.")
    mask_fraction: float = opt(0.8, "Fraction of recurrent units switched off per task.")
    hnet_all: bool = opt(False, "All main-net weights come from the hypernetwork.")
    calc_hnet_reg_targets_online: bool = opt(False, "Hypernetwork targets computed online (unsupported).")
    hnet_reg_batch_size: int = opt(-1, "Earlier tasks per hypernetwork regulariser step (-1: all).")
    last_task_only: bool = opt(False, "Train on the last task only (unsupported).")
    ts_weighting: str = opt("last", "Time-step weighting of the loss.", TS_WEIGHTINGS)
    orthogonal_hh_init: bool = opt(False, "Orthogonal init of hidden-to-hidden gate blocks.")
    orthogonal_hh_reg: float = opt(-1.0, "Orthogonality penalty strength (-1: off).")
    store_final_models: bool = opt(False, "Save the final model in the run folder.")
    store_during_models: bool = opt(False, "Save the model after every task.")
    use_best_models: bool = opt(False, "Restore the best validation checkpoint after each task.")
    during_acc_criterion: str = opt("-1", "Stop when a task's during accuracy is below this (one or a comma list).")
    # --- EWC ------------------------------------------------------------------------------
    use_ewc: bool = opt(False, "Online EWC.", group="ewc")
    ewc_gamma: float = opt(1.0, "Decay of the old Fisher in online EWC.", group="ewc")
    ewc_lambda: float = opt(5000.0, "EWC penalty strength.", group="ewc")
    n_fisher: int = opt(-1, "Training samples for the Fisher (-1: all).", group="ewc")
    tbptt_fisher: int = opt(-1, "Backprop only the last k steps for the Fisher (-1: all).", group="ewc")
    ts_weighting_fisher: str = opt("last", "Time-step weighting of the Fisher log-likelihood.", TS_WEIGHTINGS, "ewc")
    # --- SI -------------------------------------------------------------------------------
    use_si: bool = opt(False, "Synaptic intelligence.", group="si")
    si_lambda: float = opt(1.0, "SI penalty strength.", group="si")
    si_task_loss_only: bool = opt(False, "SI path integral from the task loss alone.", group="si")
    # --- context modulation ---------------------------------------------------------------
    use_context_mod: bool = opt(False, "Hypernetwork context modulation (unsupported).", group="cm")
    no_context_mod_outputs: bool = opt(False, "No modulation of the output layer.", group="cm")
    context_mod_inputs: bool = opt(False, "Modulate the input layer (unsupported).", group="cm")
    context_mod_post_activation: bool = opt(False, "Modulate after the nonlinearity (unsupported).", group="cm")
    context_mod_last_step: bool = opt(False, "Modulate the last step only (unsupported).", group="cm")
    checkpoint_context_mod: bool = opt(False, "Checkpointed modulation weights (unsupported).", group="cm")
    context_mod_init: str = opt("constant", "Init of modulation weights (unsupported).",
                                ("constant", "normal", "uniform", "sparse"), "cm")
    offset_gains: bool = opt(False, "Shift gains by one (unsupported).", group="cm")
    dont_softplus_gains: bool = opt(False, "Gains without softplus.", group="cm")
    context_mod_per_ts: bool = opt(False, "Modulation per time step (unsupported).", group="cm")
    sparsify_context_mod: bool = opt(False, "Sparsify gains (unsupported).", group="cm")
    sparsification_reg_strength: float = opt(1.0, "Gain sparsification strength (unsupported).", group="cm")
    sparsification_reg_type: str = opt("l1", "Gain sparsification type (unsupported).", ("l1", "log"), "cm")
    # --- replay -----------------------------------------------------------------------------
    use_replay: bool = opt(False, "Replay (cl-rnn implements coreset replay).", group="replay")
    all_task_softmax: bool = opt(False, "Softmax across all heads (unsupported).", group="replay")
    replay_pm_strength: float = opt(1.0, "Generative replay prior matching (unsupported).", group="replay")
    replay_rec_strength: float = opt(1.0, "Generative replay reconstruction (unsupported).", group="replay")
    replay_distill_reg: float = opt(1.0, "Strength of the distillation loss on replayed samples.", group="replay")
    replay_true_data: bool = opt(False, "Generative replay sanity check (unsupported).", group="replay")
    coreset_size: int = opt(-1, "Coreset samples kept per task (-1: generative replay, unsupported).", group="replay")
    latent_dim: int = opt(100, "Generative replay latent size (unsupported).", group="replay")
    latent_std: float = opt(1.0, "Generative replay latent std (unsupported).", group="replay")
    dec_srnn_rec_layers: str = opt("32", "Replay decoder (unsupported).", group="replay")
    dec_srnn_pre_fc_layers: str = opt("", "Replay decoder (unsupported).", group="replay")
    dec_srnn_post_fc_layers: str = opt("", "Replay decoder (unsupported).", group="replay")
    dec_srnn_no_fc_out: bool = opt(False, "Replay decoder (unsupported).", group="replay")
    dec_srnn_rec_type: str = opt("lstm", "Replay decoder (unsupported).", ("lstm", "elman"), "replay")
    dec_net_act: str = opt("tanh", "Replay decoder (unsupported).", ACTIVATIONS, "replay")
    dec_no_bias: bool = opt(False, "Replay decoder (unsupported).", group="replay")
    # --- cl-rnn's own -------------------------------------------------------------------
    data: str = opt("", "HDF5 Split-AudioSet file (default: the embedded surrogate, built on first use).",
                    group="cl_rnn")
    overwrite: bool = opt(False, "Replace an existing run folder instead of making a new one.", group="cl_rnn")

    def replace(self, **changes: Any) -> "Config":
        return dataclasses.replace(self, **changes)

    def changed(self) -> dict[str, Any]:
        """The flags whose value differs from the default."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) != f.default}


_METHOD_FIELDS = method_fields(opt, taken={f.name for f in dataclasses.fields(Config)})
if _METHOD_FIELDS:  # the study's flags, then those that method modules declare (cl_rnn.plugins)
    Config = dataclasses.make_dataclass("Config", _METHOD_FIELDS, bases=(Config,))  # type: ignore[misc]
    Config.__module__ = __name__  # pickles as cl_rnn.config.Config (Python 3.11 has no module= argument)
FIELDS = {f.name: f for f in dataclasses.fields(Config)}


def parse_bool(text: str) -> bool:
    """The study parses ``--classification`` with ``type=bool`` (any string is True); we don't."""
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes"):
        return True
    if lowered in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


# How a flag's text becomes its value, by the field's type.
FLAG_TYPES = {"bool": parse_bool, "int": int, "float": float, "str": str}


def _add_flag(group: argparse._ArgumentGroup, f: dataclasses.Field) -> None:
    meta = f.metadata
    help_text = f"{meta['help']} Default: {f.default!r}."
    if f.type in ("bool", bool) and f.default is False:
        group.add_argument(f"--{f.name}", action="store_true", help=meta["help"])
        return
    kind = FLAG_TYPES[str(f.type)]
    group.add_argument(f"--{f.name}", type=kind, default=f.default, choices=meta["choices"],
                       help=help_text)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line (the error, and where to look), not the usage block first."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser(prog: str = "train_split_audioset.py") -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=prog, description="Continual learning on Split AudioSet (cl-rnn).",
        allow_abbrev=False)
    groups: dict[str, argparse._ArgumentGroup] = {}
    for f in dataclasses.fields(Config):
        name = f.metadata["group"]
        if name not in groups:
            groups[name] = parser.add_argument_group(f"{name} options")
        _add_flag(groups[name], f)
    return parser


def _given_values(argv: Sequence[str]) -> Iterator[tuple[str, str]]:
    """(flag, value text) for each study flag on a command line, in order; a switch's value is "true"."""
    for i, word in enumerate(argv):
        name, has_value, value = word[2:].partition("=")
        if not word.startswith("--") or name not in FIELDS:
            continue
        switch = FIELDS[name].type in ("bool", bool) and FIELDS[name].default is False
        if has_value or switch:
            yield name, value if has_value else "true"
        elif i + 1 < len(argv):
            yield name, argv[i + 1]


def _same(name: str, a: str, b: str) -> bool:
    kind = FLAG_TYPES.get(str(FIELDS[name].type), str) if name in FIELDS else str
    try:
        return kind(a) == kind(b)  # equal as the flag's type: 1e-3 and 0.001 are one value
    except (ValueError, argparse.ArgumentTypeError):
        return a == b


def conflicting_values(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """The flags of ``pairs`` (name, value text) given more than once with different values, each with
    all its values in order.  For train_split_audioset.py's command line and hpsearch's --flag."""
    given: dict[str, list[str]] = {}
    for name, value in pairs:
        given.setdefault(name, []).append(value)
    return {name: values for name, values in given.items()
            if any(not _same(name, values[0], v) for v in values[1:])}


def repeat_warning(shown: str, values: Sequence[str]) -> str:
    """``--lr given twice (0.1, then 0.2); using 0.2``: the last value wins, as in argparse."""
    times = "twice" if len(values) == 2 else f"{len(values)} times"
    return f"{shown} given {times} ({', then '.join(values)}); using {values[-1]}"


def repeated_flags(argv: Sequence[str]) -> list[str]:
    """One warning for each flag of ``argv`` given more than once with different values."""
    return [repeat_warning(f"--{name}", values) for name, values in conflicting_values(_given_values(argv)).items()]


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


def to_argv(config: Config) -> list[str]:
    """The flags that differ from the defaults, in field order; ``from_argv`` inverts it."""
    argv = []
    for name, value in config.changed().items():
        if FIELDS[name].type in ("bool", bool) and FIELDS[name].default is False:
            argv.append(f"--{name}")
        else:
            argv.append(f"--{name}={format_value(value)}")
    return argv


PROGRAM = "python3 train_split_audioset.py"


def command_line(config: Config, argv: Sequence[str] | None = None) -> str:
    """A shell-ready line that reruns ``config`` (its ``to_argv``, or the given ``argv`` of it)."""
    return " ".join([PROGRAM, *map(shlex.quote, to_argv(config) if argv is None else argv)])
