"""A bad flag is one line, the error and where to look, not argparse's whole usage block before it."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cl_rnn.cli import main as cl_rnn_main

REPO = Path(__file__).resolve().parents[2]


def test_the_script_prints_one_line_for_a_bad_flag():
    done = subprocess.run([sys.executable, str(REPO / "train_split_audioset.py"), "--lr=abc"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines() == [
        "train_split_audioset.py: error: argument --lr: invalid float value: 'abc' (see --help)"]


@pytest.mark.parametrize(("argv", "line"), [
    (["train", "--no_such_flag"], "cl-rnn train: error: unrecognized arguments: --no_such_flag (see --help)"),
    (["train", "--n_iter=0"], "cl-rnn train: error: --n_iter: must be positive, got 0 (see --help)"),
    (["data", "surrogate", "--seed", "x"],
     "cl-rnn data surrogate: error: argument --seed: invalid int value: 'x' (see --help)"),
    (["data"], "cl-rnn data: error: the following arguments are required: command (see --help)"),
    (["trian"], "cl-rnn: error: unknown command 'trian' (see cl-rnn --help)"),
])
def test_cl_rnn_commands_print_one_line_for_a_bad_flag(argv, line, capsys):
    try:
        status = cl_rnn_main(argv)
    except SystemExit as exit_:
        status = exit_.code
    assert status == 2
    assert capsys.readouterr().err.splitlines() == [line]


def test_help_is_still_the_whole_usage(capsys):
    with pytest.raises(SystemExit) as exit_:
        cl_rnn_main(["train", "--help"])
    assert exit_.value.code == 0 and len(capsys.readouterr().out.splitlines()) > 90
