"""train(): the accuracy matrix, reports, stops, the run folder, determinism."""
from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest
import torch

from cl_rnn.learners.autograd import clip_grad_norm
from cl_rnn.metrics import MULTITASK_OVERVIEW_KEYS, OVERVIEW_KEYS
from cl_rnn.train import TrainingDiverged, train
from train_helpers import small_config, synthetic_tasks

TASKS = synthetic_tasks()


def test_fine_tuning_fills_the_matrix_and_reports_every_task(tmp_path):
    reports = []
    result = train(small_config(tmp_path), report=lambda t, m: reports.append((t, m)), tasks=TASKS)
    assert result.accuracy_matrix.shape == (2, 2)
    assert not np.isnan(result.accuracy_matrix).any()
    assert result.finished and result.stop_reason is None
    assert result.during == [result.accuracy_matrix[0, 0], result.accuracy_matrix[1, 1]]
    assert result.final == list(result.accuracy_matrix[1])
    assert min(result.during) > 60  # 3 classes: chance is 33%
    assert [t for t, _ in reports] == [0, 1]
    first, last = reports[0][1], reports[1][1]
    assert set(first) == {"task", "accuracy_row", "during", "during_mean", "final_mean", "finished"}
    assert not first["finished"] and last["finished"]
    assert first["final_mean"] == pytest.approx(first["accuracy_row"][0])
    assert last["during_mean"] == pytest.approx(np.mean(result.during))
    assert tuple(result.summary) == OVERVIEW_KEYS


def test_run_folder_holds_every_file_with_the_study_keys(tmp_path):
    result = train(small_config(tmp_path), tasks=TASKS)
    folder = result.out_dir
    assert {p.name for p in folder.iterdir()} == {"config.json", "command.txt", "performance_overview.txt",
                                                  "accuracy_matrix.csv", "tasks.csv", "result.json"}
    lines = (folder / "performance_overview.txt").read_text().splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == list(OVERVIEW_KEYS)
    assert lines[0] == "mean_final_accuracy %f" % np.mean(result.final)
    assert lines[1] == "std_final_accuracy %f" % np.std(result.final)
    assert lines[-1] == "finished 1"
    assert json.loads((folder / "config.json").read_text())["rnn_arch"] == "16"
    assert (folder / "command.txt").read_text().startswith("python3 train_split_audioset.py --multi_head")
    assert json.loads((folder / "result.json").read_text())["method"] == "finetune"
    assert len((folder / "tasks.csv").read_text().splitlines()) == 3


def test_an_existing_folder_is_never_overwritten_unless_asked(tmp_path):
    first = train(small_config(tmp_path, n_iter=5), tasks=TASKS).out_dir
    second = train(small_config(tmp_path, n_iter=5), tasks=TASKS).out_dir
    assert second != first and second.name == first.name + "_1"
    assert (first / "result.json").exists()
    (first / "stale.txt").write_text("x")
    third = train(small_config(tmp_path, n_iter=5, overwrite=True), tasks=TASKS).out_dir
    assert third == first and not (first / "stale.txt").exists()


def test_same_flags_and_seed_give_the_same_matrix(tmp_path):
    config = small_config(tmp_path, n_iter=30, overwrite=True)
    one = train(config, tasks=TASKS).accuracy_matrix
    two = train(config, tasks=TASKS).accuracy_matrix
    other = train(config.replace(random_seed=7), tasks=TASKS).accuracy_matrix
    np.testing.assert_array_equal(one, two)
    assert one.shape == other.shape


def test_during_acc_criterion_stops_the_run_and_says_why(tmp_path):
    reports = []
    result = train(small_config(tmp_path, during_acc_criterion="100", lr=1e-6), report=lambda t, m: reports.append(m),
                   tasks=TASKS)
    assert not result.finished
    assert result.stop_reason.startswith("during_acc_criterion: task 0")
    assert np.isnan(result.accuracy_matrix[1]).all() and len(result.during) == 1
    assert len(reports) == 1 and not reports[0]["finished"]
    assert (result.out_dir / "performance_overview.txt").read_text().endswith("finished 0\n")


def test_a_failing_report_stops_the_run(tmp_path):
    def report(task, metrics):
        raise KeyboardInterrupt("pruned")

    with pytest.raises(KeyboardInterrupt):
        train(small_config(tmp_path), report=report, tasks=TASKS)
    assert (tmp_path / "run" / "accuracy_matrix.csv").exists()


@pytest.mark.parametrize("learner", ["kernel", "autograd"])
def test_a_diverging_loss_raises_after_writing_the_folder(tmp_path, learner):
    changes = {"rnn_arch": "8,8"} if learner == "autograd" else {}  # a net the kernel does not compute
    with pytest.raises(TrainingDiverged, match=r"training diverged: the loss became (nan|inf) at iteration \d+"):
        train(small_config(tmp_path, lr=1e30, **changes), tasks=TASKS)
    assert (tmp_path / "run" / "result.json").exists()


def test_multitask_writes_one_row_and_the_multitask_keys(tmp_path):
    result = train(small_config(tmp_path, multitask=True), tasks=TASKS)
    assert result.accuracy_matrix.shape == (1, 2)
    assert tuple(result.summary) == MULTITASK_OVERVIEW_KEYS
    assert min(result.final) > 60 and result.method == "multitask"


def test_from_scratch_keeps_each_task_on_its_own_network(tmp_path):
    result = train(small_config(tmp_path, train_from_scratch=True, multi_head=False), tasks=TASKS)
    assert result.final == pytest.approx(result.during)
    assert min(result.during) > 60


@pytest.mark.parametrize("weighting", ["none", "unpadded", "discount", "last_ten_percent"])
def test_every_time_step_weighting_trains(tmp_path, weighting):
    result = train(small_config(tmp_path, ts_weighting=weighting), tasks=TASKS)
    assert min(result.during) > 60


def test_use_best_models_and_task_identity_and_clipping_run(tmp_path):
    result = train(small_config(tmp_path, use_best_models=True, input_task_identity=True, clip_grad_norm=1.0,
                                weight_decay=1e-4), tasks=TASKS)
    assert min(result.during) > 60


def test_use_cuda_without_cuda_warns_and_runs_on_the_cpu(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(small_config(tmp_path, use_cuda=True, n_iter=5), tasks=TASKS)
    assert sum("--use_cuda" in str(w.message) for w in caught) == 1


def test_clip_grad_norm_matches_torch():
    torch.manual_seed(0)
    grads = [torch.randn(50) * 3, torch.randn(7)]
    ours = [torch.zeros_like(g, requires_grad=True) for g in grads]
    theirs = [torch.zeros_like(g, requires_grad=True) for g in grads]
    for p, q, g in zip(ours, theirs, grads):
        p.grad, q.grad = g.clone(), g.clone()
    clip_grad_norm(ours, 1.0)
    torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p.grad, q.grad)


HNET = dict(hnet_all=True, use_new_hnet=True, nh_hnet_type="chunked_hmlp", nh_hmlp_arch="10,10",
            nh_chmlp_chunk_size=500, std_normal_emb=0.1, n_iter=20)


@pytest.mark.parametrize("flags", [{}, {"train_from_scratch": True, "use_best_models": True}, HNET])
def test_a_run_on_several_threads_changes_no_number(tmp_path, flags):
    """A run alone trains (the kernel learner's products and rows) and evaluates its tasks on every core:
    fine-tuning, from scratch each task with its own weights, a hypernetwork generating each task's."""
    one = train(small_config(tmp_path / "one", **flags), tasks=TASKS)
    two = train(small_config(tmp_path / "two", **flags), tasks=TASKS, threads=2)
    np.testing.assert_array_equal(one.accuracy_matrix, two.accuracy_matrix)


@pytest.mark.parametrize("setting, expected", [("1", 1), ("64", None), ("", None), ("two", None)])
def test_a_run_from_the_command_line_takes_its_cores_from_omp_num_threads_where_set(monkeypatch, setting, expected):
    from cl_rnn.cli import _usable_cores

    monkeypatch.setenv("OMP_NUM_THREADS", setting)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert _usable_cores() == (cores if expected is None else expected)  # never more than it may run on
