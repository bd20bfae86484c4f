"""The study's flags: verbatim parsing, exact round trip, clear errors."""
from __future__ import annotations

import dataclasses
import shlex
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cl_rnn.config import FIELDS, Config, build_parser, command_line, to_argv
from cl_rnn.rules import ConfigError, check, during_criteria, from_argv

STUDY_README = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference" / "split_audioset_README.rst"
STUDY_HELP = STUDY_README.with_name("study_train_split_audioset_help.txt")


def study_lines() -> list[str]:
    lines = STUDY_README.read_text().splitlines()
    return [line.split("train_split_audioset.py", 1)[1] for line in lines
            if "train_split_audioset.py --" in line and "--help" not in line]


def test_every_study_flag_exists_with_its_default():
    text = STUDY_HELP.read_text()
    parser = build_parser()
    ours = {a.dest for a in parser._actions} - {"help", "data", "overwrite"}
    import re
    theirs = set(re.findall(r"^  --(\w+)", text, flags=re.M))
    assert theirs == ours
    assert len(theirs) == 118


@pytest.mark.parametrize("line", study_lines())
def test_study_lines_parse_verbatim_and_round_trip(line):
    config = from_argv(shlex.split(line))
    assert from_argv(to_argv(config)) == config
    assert from_argv(shlex.split(command_line(config).split(" ", 2)[2])) == config


def test_study_values_land_in_the_right_fields():
    hnet = next(line for line in study_lines() if "--hnet_all" in line)
    config = from_argv(shlex.split(hnet))
    assert config.nh_chmlp_chunk_size == 2000 and config.nh_hmlp_arch == "10,10"
    assert config.beta == 1.0 and config.weight_decay == 0.01 and config.during_acc_criterion == "60"
    assert config.srnn_pre_fc_layers == "" and config.rnn_arch == "32"


def test_defaults_match_the_study():
    config = Config()
    assert (config.n_iter, config.lr, config.batch_size, config.ewc_lambda, config.beta) == \
        (5000, 0.001, 64, 5000.0, 0.005)
    assert (config.val_iter, config.val_set_size, config.mask_fraction, config.random_seed) == (250, 500, 0.8, 42)


@pytest.mark.parametrize("argv, flag", [
    (["--lr=-1"], "--lr"),
    (["--batch_size=0"], "--batch_size"),
    (["--ewc_lambda=-3", "--use_ewc"], "--ewc_lambda"),
    (["--nh_chmlp_chunk_size=0"], "--nh_chmlp_chunk_size"),
    (["--mask_fraction=1.5"], "--mask_fraction"),
    (["--rnn_arch=32,x"], "--rnn_arch"),
    (["--rnn_arch="], "--rnn_arch"),
    (["--during_acc_criterion=1,2"], "--during_acc_criterion"),
    (["--use_ewc", "--use_si"], "--use_ewc"),
    (["--multitask", "--use_ewc"], "--multitask"),
    (["--use_replay", "--coreset_size=10", "--use_si"], "--use_replay"),
    (["--use_replay"], "--use_replay"),
    (["--hnet_all"], "--hnet_all"),
    (["--latent_dim=5"], "--latent_dim"),
    (["--use_context_mod"], "--use_context_mod"),
    (["--classification=False"], "--classification"),
    (["--n_iter=ten"], "--n_iter"),
    (["--net_act=gelu"], "--net_act"),
    (["--no_such_flag"], "--no_such_flag"),
    (["--n_it=3"], "--n_it"),
])
def test_bad_flags_are_argparse_errors_naming_the_flag(argv, flag, capsys):
    with pytest.raises(SystemExit) as exit_info:
        from_argv(argv)
    assert exit_info.value.code == 2
    assert flag in capsys.readouterr().err


def test_ineffective_combinations_warn():
    with pytest.warns(UserWarning, match="--si_task_loss_only"):
        check(Config(si_task_loss_only=True))
    with pytest.warns(UserWarning, match="--use_masks implies"):
        check(Config(use_masks=True, multi_head=True))


def test_during_criterion_expands_per_task():
    assert during_criteria(Config(during_acc_criterion="60")) == [60.0] * 9
    assert during_criteria(Config(num_tasks=3, during_acc_criterion="10,-1")) == [10.0, -1.0]
    with pytest.raises(ConfigError, match="--during_acc_criterion"):
        during_criteria(Config(during_acc_criterion="abc"))


def values_for(field: dataclasses.Field):
    kind = str(field.type)
    if field.metadata["choices"]:
        return st.sampled_from(field.metadata["choices"])
    if kind == "bool":
        return st.booleans()
    if kind == "int":
        return st.integers(-5, 10**6)
    if kind == "float":
        return st.floats(allow_nan=False, allow_infinity=False, width=64)
    return st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)


# The machine may be busy: data generation speed is not what this test is about.
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_to_argv_inverts_parsing_for_any_values(data):
    """Round trip at the argv level, without the rules (they reject most random values)."""
    names = data.draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=8, unique=True))
    config = Config(**{name: data.draw(values_for(FIELDS[name])) for name in names})
    parsed = build_parser().parse_args(to_argv(config))
    assert Config(**vars(parsed)) == config
