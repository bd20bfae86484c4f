"""Bad input is refused before any training, with one line naming the flag (or file) and the reason."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from cl_rnn.cli import train_main
from cl_rnn.config import FIELDS
from cl_rnn.data.surrogate import make_surrogate
from cl_rnn.data.store import write_dataset
from cl_rnn.rules import UNSUPPORTED_FLAGS, from_argv
from hpsearch.cli import main as hpsearch_main

REPO = Path(__file__).resolve().parents[2]
ENTRY = [sys.executable, str(REPO / "train_split_audioset.py")]
NUMERIC = [name for name, f in FIELDS.items() if str(f.type) in ("int", "float")]
TINY_RUN = ["--num_tasks=2", "--n_iter=5", "--val_set_size=10", "--loglevel_info"]

# (flag, bad value) pairs beyond "negative": zeros, upper bounds, malformed lists, wrong counts.
OUT_OF_RANGE = [
    ("lr", "0"), ("lr", "-0.001"), ("n_iter", "0"), ("batch_size", "0"), ("num_tasks", "0"),
    ("num_classes_per_task", "0"), ("val_iter", "0"), ("nh_chmlp_chunk_size", "0"), ("nh_chunk_emb_size", "0"),
    ("nh_cond_emb_size", "0"), ("mask_fraction", "1.0"), ("mask_fraction", "-0.1"), ("adam_beta1", "1.0"),
    ("nh_hnet_dropout_rate", "1.5"), ("clip_grad_norm", "0"), ("orthogonal_hh_reg", "-0.5"),
    ("ewc_lambda", "-1"), ("ewc_gamma", "-0.1"), ("si_lambda", "-1"), ("beta", "-0.005"), ("weight_decay", "-1"),
    ("replay_distill_reg", "-1"), ("val_set_size", "-1"), ("random_seed", str(2**32)), ("data_random_seed", "-1"),
    ("n_fisher", "-2"), ("tbptt_fisher", "-3"), ("hnet_reg_batch_size", "-2"), ("coreset_size", "0"),
    ("rnn_arch", "0"), ("rnn_arch", "32,x"), ("rnn_arch", ""), ("srnn_pre_fc_layers", "-4"),
    ("during_acc_criterion", "-5"), ("during_acc_criterion", "50,50"), ("during_acc_criterion", "high"),
    ("net_act", "swish"), ("ts_weighting", "first"),
]
CONTRADICTIONS = [
    (["--use_ewc", "--use_si"], "use_ewc"), (["--use_masks", "--multitask"], "use_masks"),
    (["--hnet_all", "--use_new_hnet", "--nh_hnet_type=chunked_hmlp", "--use_replay", "--coreset_size=10"],
     "hnet_all"),
    (["--train_from_scratch", "--multitask"], "train_from_scratch"), (["--use_replay"], "use_replay"),
    (["--use_replay", "--coreset_size=20", "--use_si"], "use_replay"),
    (["--hnet_all"], "hnet_all"), (["--multitask", "--use_ewc"], "multitask"),
]


def refused(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    with pytest.raises(SystemExit) as exit_:
        from_argv(argv)
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    return lines[-1]


@pytest.mark.parametrize("flag", NUMERIC)
def test_every_numeric_flag_refuses_negative_values_naming_itself(flag, capsys):
    for value in ("-7", "-1000000000"):
        message = refused([f"--{flag}={value}"], capsys)
        assert f"--{flag}" in message, message


@pytest.mark.parametrize(("flag", "value"), OUT_OF_RANGE)
def test_out_of_range_values_are_refused_naming_the_flag(flag, value, capsys):
    message = refused([f"--{flag}={value}"], capsys)
    assert f"--{flag}" in message, message


@pytest.mark.parametrize(("argv", "flag"), CONTRADICTIONS)
def test_contradictory_flags_are_refused_naming_one_of_them(argv, flag, capsys):
    assert f"--{flag}" in refused(argv, capsys)


def test_unsupported_code_paths_are_named():
    assert len(UNSUPPORTED_FLAGS) > 40  # every such flag gets its own message (covered by the negative sweep)


def write_wrong_shape(path: Path) -> None:
    x, y, train_idx, test_idx, attrs = make_surrogate(seed=0, clips_per_class=4)
    write_dataset(path, x, y, train_idx, test_idx, attrs)
    with h5py.File(path, "r+") as f:
        del f["x"]
        f.create_dataset("x", data=np.zeros((len(y), 10, 64), dtype=np.uint8))


def write_without_split(path: Path) -> None:
    x, y, train_idx, test_idx, attrs = make_surrogate(seed=0, clips_per_class=4)
    write_dataset(path, x, y, train_idx, test_idx, attrs)
    with h5py.File(path, "r+") as f:
        del f["test_idx"]


def write_truncated(path: Path, source: Path) -> None:
    data = source.read_bytes()
    path.write_bytes(data[: len(data) // 3])


PROBLEMS = {"missing": "no such file", "corrupt": "not a readable HDF5 file", "truncated": "not a readable HDF5 file",
            "wrong_shape": "expected (N, 10, 128)", "no_split": "test_idx", "empty": "not a readable HDF5 file"}


def bad_file(problem: str, folder: Path, good: Path) -> Path:
    path = folder / f"{problem}.h5"
    if problem == "corrupt":
        path.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(range(256)) * 40)
    elif problem == "truncated":
        write_truncated(path, good)
    elif problem == "wrong_shape":
        write_wrong_shape(path)
    elif problem == "no_split":
        write_without_split(path)
    elif problem == "empty":
        path.write_bytes(b"")
    return path


@pytest.mark.parametrize("problem", PROBLEMS)
def test_a_bad_data_file_is_one_line_naming_it(problem, tmp_path, tiny_dataset_path, capsys):
    path = bad_file(problem, tmp_path, tiny_dataset_path)
    assert train_main([f"--data={path}", f"--out_dir={tmp_path / 'run'}", *TINY_RUN]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and PROBLEMS[problem] in lines[0], lines
    assert not (tmp_path / "run" / "result.json").exists()  # nothing trained


def test_the_script_on_a_corrupt_file_prints_one_line_and_no_traceback(tmp_path, tiny_dataset_path):
    path = bad_file("truncated", tmp_path, tiny_dataset_path)
    done = subprocess.run([*ENTRY, f"--data={path}", f"--out_dir={tmp_path / 'run'}", *TINY_RUN],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"train_split_audioset.py: error: {path}: " + done.stderr.split(f"{path}: ", 1)[1].strip()]
    assert "not a readable HDF5 file" in done.stderr


def test_a_coreset_larger_than_a_task_is_refused_right_after_loading(tmp_path, tiny_dataset_path, capsys):
    argv = [f"--data={tiny_dataset_path}", f"--out_dir={tmp_path / 'run'}", *TINY_RUN, "--use_replay",
            "--coreset_size=500"]
    assert train_main(argv) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["train_split_audioset.py: error: --coreset_size: 500 is more than the 230 training "
                     "samples of task 0"]
    assert not (tmp_path / "run" / "result.json").exists()


def test_hpsearch_refuses_an_unknown_method_and_bad_settings_in_one_line(tmp_path, capsys):
    cases = [(["--method", "nosuch"], "unknown method 'nosuch'"),
             (["--method", "si", "--num-samples", "0"], "--num-samples"),
             (["--method", "si", "--flag", "lr=-1"], "--lr"),
             (["--method", "si", "--flag", "nosuch=1"], "--flag 'nosuch=1'"),
             (["--method", "si", "--data", str(tmp_path / "none.h5")], "no such file")]
    for argv, expected in cases:
        assert hpsearch_main(["run", "--results", str(tmp_path), *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expected in err[0], err
    assert not any(tmp_path.iterdir())  # no sweep folder was started
