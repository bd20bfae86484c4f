"""Winners as command lines: the trial's whole configuration, never its run folder."""
from __future__ import annotations

import shlex

import numpy as np
import pytest

from cl_rnn.config import Config
from cl_rnn.rules import from_argv
from hpsearch.analyze import AnalysisError, load_runs
from hpsearch.export import command_lines, export

from runfolders import trial_config


def parse(line: str):
    words = shlex.split(line)
    assert words[:2] == ["python3", "train_split_audioset.py"]
    return from_argv(words[2:])


@pytest.mark.parametrize("by, top, expected", [
    ("final", 1, [(1e-4, 32)]),
    ("during", 1, [(1e-3, 64)]),
    ("final", 2, [(1e-4, 32), (5e-5, 128)]),
    ("pareto", 0, [(1e-4, 32), (3e-4, 64), (1e-3, 64)]),
])
def test_exported_lines_parse_back_to_the_winners_configs(sweep_folder, by, top, expected):
    out = sweep_folder / "winners.txt"
    text = export(load_runs(sweep_folder), out, by=by, top=top)
    assert out.read_text() == text
    lines = command_lines(text)
    assert [parse(line) for line in lines] == [trial_config(lr, batch) for lr, batch in expected]
    assert all("--out_dir" not in line for line in lines)


def test_line_carries_seed_iterations_and_data(tmp_path):
    from runfolders import write_run

    config = trial_config(1e-3, 64, seed=7).replace(data="/data/audioset.h5", n_iter=123)
    write_run(tmp_path / "r", config, [50.0] * 3, [40.0] * 3)
    line = command_lines(export(load_runs(tmp_path), tmp_path / "w.txt"))[0]
    assert "--random_seed=7" in line and "--n_iter=123" in line and "--data=/data/audioset.h5" in line
    assert "--multi_head" in line and "--out_dir" not in line


def test_nothing_finished_is_a_clear_error(tmp_path):
    from runfolders import write_run

    write_run(tmp_path / "r", trial_config(1e-3, 64), [50.0], [40.0], finished=False,
              stop_reason="during_acc_criterion: task 0")
    with pytest.raises(AnalysisError, match="no finished trial"):
        export(load_runs(tmp_path), tmp_path / "w.txt")


def test_sampled_values_show_even_when_they_equal_the_default(tmp_path):
    from runfolders import build_sweep_folder

    sweep = build_sweep_folder(tmp_path / "s")
    line = command_lines(export(load_runs(sweep), sweep / "w.txt", by="during"))[0]
    assert "--lr=0.001" in line and "--batch_size=64" in line  # both are the defaults
    assert parse(line) == trial_config(1e-3, 64)


def test_running_an_exported_line_reproduces_the_accuracy_matrix(tmp_path, tiny_dataset_path):
    from cl_rnn.train import train

    sweep = tmp_path / "sweep"
    original = Config(multi_head=True, num_tasks=2, n_iter=30, batch_size=16, rnn_arch="8", lr=0.005,
                      clip_grad_norm=1.0, orthogonal_hh_reg=0.1, val_set_size=20, val_iter=10,
                      random_seed=7, data=str(tiny_dataset_path), out_dir=str(sweep / "trial_x" / "run"))
    first = train(original)
    line = command_lines(export(load_runs(sweep), sweep / "winners.txt"))[0]
    rerun = parse(line)  # what train_split_audioset.py does with the line
    assert rerun == original.replace(out_dir="")
    second = train(rerun.replace(out_dir=str(tmp_path / "rerun")))
    assert not np.isnan(first.accuracy_matrix).any()
    np.testing.assert_array_equal(second.accuracy_matrix, first.accuracy_matrix)
    files = [(d / "accuracy_matrix.csv").read_text() for d in (tmp_path / "rerun", sweep / "trial_x" / "run")]
    assert files[0] == files[1]
