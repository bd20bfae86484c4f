"""A run stopped after any task and restarted ends with the same accuracy matrix, bit for bit."""
from __future__ import annotations

import json

import numpy as np
import pytest

from cl_rnn import checkpoint
from cl_rnn.rules import ConfigError
from cl_rnn.train import train
from train_helpers import small_config, synthetic_tasks

TASKS = synthetic_tasks(num_tasks=3)
METHODS = {
    "finetune": {},
    "ewc": {"use_ewc": True, "ewc_lambda": 50.0, "n_fisher": 20},
    "si": {"use_si": True, "si_lambda": 1.0},
    "si_task_loss_only": {"use_si": True, "si_task_loss_only": True},
    "masks+si": {"use_masks": True, "mask_fraction": 0.5, "use_si": True},
    "hnet": {"hnet_all": True, "use_new_hnet": True, "nh_hnet_type": "chunked_hmlp", "nh_hmlp_arch": "10,10",
             "nh_chmlp_chunk_size": 500, "nh_hnet_dropout_rate": 0.1, "hnet_reg_batch_size": 1},
    "replay": {"use_replay": True, "coreset_size": 20},
    "from_scratch": {"train_from_scratch": True},
    "ortho+best": {"orthogonal_hh_reg": 0.01, "use_best_models": True},
}


class Interrupt(Exception):
    pass


def interrupt_after(task: int):
    def report(t: int, metrics: dict) -> None:
        if t == task:
            raise Interrupt(f"stopped after task {t}")
    return report


@pytest.mark.parametrize("method", METHODS)
def test_a_restart_after_any_task_ends_with_the_uninterrupted_matrix(tmp_path, method):
    flags = dict(num_tasks=3, n_iter=20, val_iter=10, **METHODS[method])
    whole = train(small_config(tmp_path / "whole", **flags), tasks=TASKS)
    for task in (0, 1):
        config = small_config(tmp_path / f"cut{task}", **flags)
        with pytest.raises(Interrupt):
            train(config, report=interrupt_after(task), tasks=TASKS)
        assert checkpoint.load(checkpoint.path_in(config.out_dir)).task == task
        resumed = train(config, tasks=TASKS)
        assert resumed.out_dir == whole.out_dir.parent.parent / f"cut{task}" / "run"
        np.testing.assert_array_equal(resumed.accuracy_matrix, whole.accuracy_matrix)
        saved = json.loads((resumed.out_dir / "result.json").read_text())
        assert saved["finished"] and saved["resumed_at"] == [task + 1]
        assert set(saved["code_version"]) in ({"commit", "dirty"}, {"package"})
        assert not checkpoint.path_in(config.out_dir).exists()  # a finished run keeps none


def test_a_checkpoint_of_other_flags_is_refused_unless_overwrite(tmp_path):
    config = small_config(tmp_path, num_tasks=3, n_iter=10)
    with pytest.raises(Interrupt):
        train(config, report=interrupt_after(0), tasks=TASKS)
    with pytest.raises(ConfigError, match=r"--out_dir .*other flags \(--lr=0.01 \(now 0.02\)\).*--overwrite"):
        train(config.replace(lr=0.02), tasks=TASKS)
    fresh = train(config.replace(lr=0.02, overwrite=True), tasks=TASKS)
    assert fresh.out_dir == tmp_path / "run" and fresh.resumed_at == []


def test_a_finished_run_keeps_its_checkpoint_only_with_store_final_models(tmp_path):
    config = small_config(tmp_path, n_iter=10, store_final_models=True)
    first = train(config, tasks=TASKS)
    state = checkpoint.load(checkpoint.path_in(first.out_dir))
    assert state.done and state.task == 1 and state.learner["theta"].numel() > 0
    second = train(config, tasks=TASKS)  # a finished run is not resumed: a new folder, as before
    assert second.out_dir.name == "run_1"


def test_an_unreadable_checkpoint_is_one_clear_error(tmp_path):
    config = small_config(tmp_path, num_tasks=3, n_iter=10)
    with pytest.raises(Interrupt):
        train(config, report=interrupt_after(0), tasks=TASKS)
    path = checkpoint.path_in(config.out_dir)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ConfigError, match=r"checkpoint.pt: unreadable checkpoint .*--overwrite"):
        train(config, tasks=TASKS)
