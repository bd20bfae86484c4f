"""``hpsearch run --flag NAME=VALUE`` given twice with different values: one warning naming both values."""
from __future__ import annotations

import pytest

from hpsearch.cli import main as hpsearch_main


def stderr_of_run(tmp_path, capsys, *flags: str) -> list[str]:
    """A sweep refused after its flags were read (an unknown method): no Ray, only the warnings."""
    argv = ["run", "--method", "no_such_method", "--results", str(tmp_path)]
    for flag in flags:
        argv += ["--flag", flag]
    assert hpsearch_main(argv) == 2
    return capsys.readouterr().err.strip().splitlines()[:-1]  # the last line: the unknown method


def test_a_flag_given_twice_with_different_values_warns_once(tmp_path, capsys):
    assert stderr_of_run(tmp_path, capsys, "lr=0.1", "num_tasks=2", "lr=0.2") == [
        "hpsearch run: warning: --flag lr given twice (0.1, then 0.2); using 0.2"]


@pytest.mark.parametrize("flags", [("lr=0.001", "lr=0.001"), ("lr=1e-3", "lr=0.001"), ("num_tasks=2",)])
def test_the_same_value_twice_is_no_warning(tmp_path, capsys, flags):
    assert stderr_of_run(tmp_path, capsys, *flags) == []


def test_three_values_are_one_warning_naming_each(tmp_path, capsys):
    assert stderr_of_run(tmp_path, capsys, "num_tasks=2", "num_tasks=3", "num_tasks=2") == [
        "hpsearch run: warning: --flag num_tasks given 3 times (2, then 3, then 2); using 2"]
