"""Where the C kernel cannot be built or does not compute what torch ops compute, a run uses torch
ops and says so in one log line; it never fails.  Each case builds into a fresh kernel cache."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from train_helpers import small_config, synthetic_tasks

from cl_rnn.nets import lstm_kernel
from cl_rnn.train import train

REPO = Path(__file__).resolve().parents[1]
UNAVAILABLE = "LSTM C kernel unavailable"


@pytest.fixture
def fresh_kernels(tmp_path, monkeypatch):
    """An empty kernel cache and no kernel loaded yet in this process."""
    monkeypatch.setenv("CL_RNN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("CL_RNN_NO_KERNEL", raising=False)
    monkeypatch.delenv("CL_RNN_KERNEL_FLAGS", raising=False)
    monkeypatch.setattr(lstm_kernel, "_loaded", {})
    return tmp_path / "cache" / "kernels"


def _has_compiler() -> bool:
    try:
        return subprocess.run([os.environ.get("CC", "cc"), "--version"], capture_output=True).returncode == 0
    except OSError:
        return False


needs_compiler = pytest.mark.skipif(not _has_compiler(), reason="no C compiler here")


@pytest.mark.parametrize("environment", [
    {"CC": "/nonexistent/cc"},                                    # no compiler
    {"CL_RNN_KERNEL_FLAGS": "-include /nonexistent/header.h"},    # the compiler refuses the source
    {"CL_RNN_KERNEL_FLAGS": "-UEXP -DEXP=fabsf"},                 # it builds, but computes something else
], ids=["no-compiler", "compiler-refuses", "wrong-results"])
def test_a_run_without_a_usable_kernel_trains_with_torch_ops_and_logs_one_line(environment, tiny_dataset_path,
                                                                                tmp_path):
    if "CL_RNN_KERNEL_FLAGS" in environment and not _has_compiler():
        pytest.skip("no C compiler here")
    env = {**os.environ, "CL_RNN_CACHE_DIR": str(tmp_path / "cache"), **environment}
    env.pop("CL_RNN_NO_KERNEL", None)
    command = [sys.executable, str(REPO / "train_split_audioset.py"), f"--data={tiny_dataset_path}", "--num_tasks=2",
               "--multi_head", "--n_iter=20", "--val_set_size=20", "--loglevel_info", f"--out_dir={tmp_path / 'run'}"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "finished" in done.stdout
    warnings = [line for line in done.stderr.splitlines() if UNAVAILABLE in line]
    assert len(warnings) == 1, done.stderr
    assert "using torch ops" in warnings[0] and "Traceback" not in done.stderr


@needs_compiler
def test_a_refused_build_is_not_tried_again(fresh_kernels, monkeypatch, caplog):
    monkeypatch.setenv("CL_RNN_KERNEL_FLAGS", "-include /nonexistent/header.h")
    with caplog.at_level(logging.WARNING, logger="cl_rnn"):
        assert lstm_kernel.load() is None
    assert "nonexistent/header.h" in caplog.text
    monkeypatch.setattr(lstm_kernel, "_loaded", {})
    monkeypatch.setattr(lstm_kernel, "_build", lambda *args: pytest.fail("compiled again"))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="cl_rnn"):
        assert lstm_kernel.load() is None
    assert caplog.text.count(UNAVAILABLE) == 1 and "nonexistent/header.h" in caplog.text
    memos = fresh_kernels.glob("*.failed")  # the threaded build's and the plain one's
    assert any(f"remembered in {memo}: delete it to try again" in caplog.text for memo in memos)


@needs_compiler
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_portable_kernel_other_cpus_build_agrees_with_torch_ops(dtype, fresh_kernels, monkeypatch, caplog):
    """-DCL_RNN_PORTABLE leaves out the x86 parts (denormal flush, glibc's vector exp), as on ARM."""
    monkeypatch.setenv("CL_RNN_KERNEL_FLAGS", "-DCL_RNN_PORTABLE")
    with caplog.at_level(logging.WARNING, logger="cl_rnn"):
        library = lstm_kernel.load(dtype)
    assert library is not None, caplog.text
    symbols = subprocess.run(["nm", "-D", *map(str, fresh_kernels.glob("*.so"))], capture_output=True, text=True)
    if symbols.returncode == 0:
        assert "_ZGV" not in symbols.stdout  # no x86 vector-exp variants referenced
    lstm_kernel._check_against_torch_ops(library, dtype)  # raises if they differ


def test_no_kernel_setting_trains_with_torch_ops_silently(fresh_kernels, monkeypatch, caplog, tmp_path):
    monkeypatch.setenv("CL_RNN_NO_KERNEL", "1")
    with caplog.at_level(logging.WARNING, logger="cl_rnn"):
        result = train(small_config(tmp_path, n_iter=10), tasks=synthetic_tasks())
        assert lstm_kernel.load() is None
    assert result.finished and UNAVAILABLE not in caplog.text
    assert not fresh_kernels.exists()  # nothing was compiled


@needs_compiler
def test_the_check_rejects_a_kernel_that_computes_something_else(fresh_kernels, monkeypatch):
    monkeypatch.setenv("CL_RNN_KERNEL_FLAGS", "-UEXP -DEXP=fabsf")
    monkeypatch.setattr(lstm_kernel, "_check_against_torch_ops", lambda library, dtype: None)
    wrong = lstm_kernel.load()
    assert wrong is not None
    monkeypatch.undo()
    with pytest.raises(lstm_kernel.KernelUnavailable, match="differ from torch ops"):
        lstm_kernel._check_against_torch_ops(wrong, torch.float32)


@needs_compiler
def test_a_compiler_without_openmp_still_builds_the_one_thread_kernel(fresh_kernels, monkeypatch, caplog):
    """The threaded build is refused (here: an unknown flag in its place); the kernel without it serves,
    silently, and a call asking for two threads runs on one with the same numbers."""
    monkeypatch.setattr(lstm_kernel, "THREADED", ["-fno-such-openmp-flag"])
    with caplog.at_level(logging.WARNING, logger="cl_rnn"):
        library = lstm_kernel.load()
    assert library is not None and UNAVAILABLE not in caplog.text
    assert len(list(fresh_kernels.glob("*.failed"))) == 1  # the refused threaded build is not tried again
    lstm_kernel._check_against_torch_ops(library, torch.float32)  # includes threads=2 against threads=1
