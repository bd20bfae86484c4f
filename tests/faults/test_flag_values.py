"""Flag values that make no sense are refused before any training; a flag given twice is a warning."""
from __future__ import annotations

import pytest

from cl_rnn.cli import train_main
from cl_rnn.config import FIELDS
from cl_rnn.rules import from_argv

FLOATS = [name for name, f in FIELDS.items() if str(f.type) == "float"]


def refused(argv: list[str], capsys: pytest.CaptureFixture) -> list[str]:
    with pytest.raises(SystemExit) as exit_:
        from_argv(argv)
    assert exit_.value.code == 2
    return capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("flag", FLOATS)
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_every_float_flag_refuses_nan_and_inf_naming_itself(flag, value, capsys):
    assert refused([f"--{flag}={value}"], capsys) == [
        f"train_split_audioset.py: error: --{flag}: must be a finite number, got {float(value)!r} (see --help)"]


def test_lr_inf_is_refused_before_any_run_folder_exists(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        train_main(["--lr=inf", f"--out_dir={tmp_path / 'run'}"])
    assert exit_.value.code == 2 and not (tmp_path / "run").exists()
    assert capsys.readouterr().err.strip().splitlines() == [
        "train_split_audioset.py: error: --lr: must be a finite number, got inf (see --help)"]


@pytest.mark.parametrize("value", ["200", "100.5", "nan", "inf", "50,200"])
def test_the_during_criterion_is_a_percentage(value, capsys):
    assert refused(["--num_tasks=3", f"--during_acc_criterion={value}"], capsys) == [
        "train_split_audioset.py: error: --during_acc_criterion: accuracies are percentages in [0, 100] "
        f"(or -1: off), got {value!r} (see --help)"]


def test_a_criterion_list_longer_than_the_tasks_says_what_fits(capsys):
    assert refused(["--num_tasks=2", "--during_acc_criterion=50,60,70"], capsys) == [
        "train_split_audioset.py: error: --during_acc_criterion: 3 values for 2 tasks; give one value for all "
        "tasks, or one for each task but the last (1 here) (see --help)"]


@pytest.mark.parametrize("value", ["0", "100", "-1", "60,-1"])
def test_criteria_in_range_are_accepted(value):
    assert from_argv(["--num_tasks=3", f"--during_acc_criterion={value}"]).during_acc_criterion == value


def test_a_flag_given_twice_with_different_values_warns_once_naming_both(tmp_path, capsys):
    argv = [f"--data={tmp_path / 'none.h5'}", "--lr=0.1", "--num_tasks=2", "--lr", "0.2", "--num_tasks=2"]
    assert train_main(argv) == 1  # refused later for the missing file: only the warnings matter here
    err = capsys.readouterr().err.strip().splitlines()
    assert err[:-1] == ["train_split_audioset.py: warning: --lr given twice (0.1, then 0.2); using 0.2"], err


@pytest.mark.parametrize("argv", [["--lr=0.001", "--lr=1e-3"], ["--use_ewc", "--use_ewc"],
                                  ["--rnn_arch=32,32", "--rnn_arch", "32,32"], ["--lr=0.1"]])
def test_the_same_value_twice_is_no_warning(argv):
    from cl_rnn.config import repeated_flags

    assert repeated_flags(argv) == []


def test_three_values_are_one_warning_and_hpsearch_can_reuse_the_check():
    from cl_rnn.config import conflicting_values, repeated_flags

    assert repeated_flags(["--n_iter=5", "--n_iter=6", "--out_dir=x", "--n_iter=5"]) == [
        "--n_iter given 3 times (5, then 6, then 5); using 5"]
    assert conflicting_values([("lr", "0.1"), ("lr", "1e-1"), ("num_tasks", "2"), ("num_tasks", "3")]) == {
        "num_tasks": ["2", "3"]}
