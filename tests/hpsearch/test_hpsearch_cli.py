"""`hpsearch` command line: spaces listing, usage errors as one line, subcommand registry."""
from __future__ import annotations

import argparse

import pytest

import search_spaces
from hpsearch import cli


def test_spaces_lists_every_method_with_its_fixed_flags(capsys):
    assert cli.main(["spaces"]) == 0
    out = capsys.readouterr().out
    for name in search_spaces.names():
        assert f"\n{name}: " in f"\n{out}"
    assert "fixed:   --multi_head --use_ewc" in out
    assert "orthogonal_hh_reg" in out and "(log)" in out  # a conditional parameter is listed too


def test_spaces_of_one_method(capsys):
    assert cli.main(["spaces", "--method", "hnet"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("hnet: ") and "--nh_hnet_type=chunked_hmlp" in out and "beta" in out
    assert "methods: hnet (source)" in out and "single runs (--hnet_all (hypernetwork) is not batched)" in out


@pytest.mark.parametrize("argv,message", [
    (["run"], "--method is required"),
    (["run", "--method", "nope"], "unknown method 'nope'"),
    (["run", "--method", "si", "--flag", "bogus=1"], "--flag 'bogus=1'"),
    (["run", "--method", "si", "--flag", "multi_head=maybe"], "--flag multi_head: expected true or false"),
    (["run", "--method", "si", "--flag", "num_tasks=two"], "--flag num_tasks: invalid literal"),
    (["spaces", "--method", "nope"], "unknown method 'nope'"),
])
def test_bad_input_is_one_line_and_status_2(capsys, tmp_path, argv, message):
    assert cli.main([*argv, *(["--results", str(tmp_path)] if argv[0] == "run" else [])]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


@pytest.mark.parametrize("argv, message", [
    (["run", "--num-samples", "x"], "hpsearch run: error: argument --num-samples: invalid int value: 'x'"),
    (["slurm", "--nodes", "2"], "hpsearch slurm: error: the following arguments are required"),
    (["nope"], "hpsearch: error: argument COMMAND: invalid choice: 'nope'"),
])
def test_a_flag_argparse_refuses_is_one_line_not_the_usage_block(capsys, argv, message):
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.startswith(message) and err.count("\n") == 1, err
    assert err.rstrip().endswith("(see --help)")


def test_resume_of_an_unknown_sweep_is_refused(capsys, tmp_path):
    assert cli.main(["run", "--resume", "nothing", "--results", str(tmp_path)]) == 2
    assert f"hpsearch run: --resume nothing: no sweep in {tmp_path / 'nothing'}\n" == capsys.readouterr().err


def test_a_subcommand_is_one_function(monkeypatch, capsys):
    monkeypatch.setitem(cli.SUBCOMMANDS, "hello", None)  # the registration below is undone after the test

    @cli.subcommand("hello", "Say hello.", cli.arg("--who", default="world"))
    def hello(args: argparse.Namespace) -> int:
        print(f"hello {args.who}")
        return 0

    assert cli.main(["hello", "--who", "sweeps"]) == 0
    assert capsys.readouterr().out == "hello sweeps\n"
