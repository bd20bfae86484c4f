"""Coreset replay: coreset sizes, the replay batch split, distillation targets = the frozen net's logits."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import cl_rnn.learners.autograd
from cl_rnn.config import Config
from cl_rnn.methods.build import build_method
from cl_rnn.methods.finetune import FineTune
from cl_rnn.methods.replay import CoresetReplay
from cl_rnn.nets.rnn import NetSpec, RecurrentNet
from cl_rnn.rules import ConfigError
from cl_rnn.train import train
from train_helpers import small_config, synthetic_tasks

TASKS = synthetic_tasks(num_tasks=3)
NET = RecurrentNet(NetSpec(rnn=(6,), num_tasks=3, classes_per_task=3))


def test_the_study_replay_net_keeps_its_extra_outputs():
    config = Config(use_replay=True, coreset_size=100, multi_head=True)
    assert RecurrentNet(NetSpec.from_config(config)).num_params == 24_036 + 200 * 33


def test_coresets_are_n_distinct_training_samples_of_every_task_the_last_included(tmp_path, monkeypatch):
    built = []

    def capture(config, net, device):
        built.append(build_method(config, net, device))
        return built[-1]

    monkeypatch.setattr(cl_rnn.learners.autograd, "build_method", capture)
    result = train(small_config(tmp_path, num_tasks=3, use_replay=True, coreset_size=25, replay_distill_reg=1.0,
                                use_best_models=True), tasks=TASKS)
    replay = built[0].extras[0]
    assert len(replay.coresets) == 3
    for task, (chosen, coreset) in enumerate(zip(replay.coreset_indices, replay.coresets)):
        assert len(set(chosen.tolist())) == 25 and chosen.max() < len(TASKS[task].y_train)
        torch.testing.assert_close(coreset, TASKS[task].x_train[torch.from_numpy(chosen)].permute(1, 0, 2).float())
    assert min(result.during) > 60  # learns every task (chance: 33%)


def _replay_after(tasks_done: int, batch_size: int = 12, strength: float = 1.0) -> tuple[CoresetReplay, FineTune]:
    torch.manual_seed(0)
    np.random.seed(0)
    source = FineTune.fresh(NET, False, torch.device("cpu"))
    replay = CoresetReplay(NET, source, coreset_size=10, strength=strength, batch_size=batch_size)
    for task in range(tasks_done):
        replay.before_task(task, TASKS[task])
        with torch.no_grad():
            source.theta.add_(0.1 * torch.randn_like(source.theta))  # "training"
        replay.after_task(task, TASKS[task])
    replay.before_task(tasks_done, TASKS[tasks_done])
    return replay, source


def test_targets_are_the_logits_of_the_network_frozen_at_the_start_of_the_task():
    replay, source = _replay_after(2)
    frozen = source.theta.detach().clone()
    for task in range(2):
        rows = slice(10 * task, 10 * task + 10)
        expected = NET.forward(replay.coresets[task], frozen, task)[0]
        torch.testing.assert_close(replay.targets[rows], expected)
        assert replay.sample_task[rows].eq(task).all()
    with torch.no_grad():
        source.theta.add_(1.0)  # training the new task does not move the targets
    torch.testing.assert_close(replay.targets[:10], NET.forward(replay.coresets[0], frozen, 0)[0])


def test_replay_batches_split_evenly_over_earlier_tasks_drawn_from_their_coresets():
    replay, _ = _replay_after(2, batch_size=13)
    for _ in range(20):
        rows, weights = replay.draw(2)
        owners = rows // 10
        counts = sorted(np.bincount(owners, minlength=2).tolist())
        assert counts == [6, 7] and len(rows) == 13
        for task in range(2):
            assert weights[owners == task].sum() == pytest.approx(1.0)


def test_distillation_loss_is_the_summed_temperature_2_cross_entropy():
    replay, source = _replay_after(2, batch_size=12, strength=3.0)
    state = np.random.get_state()
    rows, _ = replay.draw(2)
    np.random.set_state(state)
    with torch.no_grad():
        source.theta.add_(0.05 * torch.randn_like(source.theta))
    loss = replay.penalty(2)
    index = torch.from_numpy(rows)
    logits = NET.forward(replay.x[:, index], source.theta, replay.sample_task[index])[0]
    targets = torch.softmax(replay.targets[index] / 2, 1)
    per_sample = -(targets * F.log_softmax(logits / 2, 1)).sum(1)
    owners = torch.from_numpy(rows // 10)
    expected = 3.0 * 4 * sum(per_sample[owners == task].mean() for task in range(2))
    torch.testing.assert_close(loss, expected)


def test_distillation_has_no_gradient_at_the_frozen_network():
    replay, source = _replay_after(1)
    replay.penalty(1).backward()
    assert source.theta.grad.abs().max() < 1e-5
    source.theta.grad = None
    with torch.no_grad():
        source.theta.add_(0.1)
    replay.penalty(1).backward()
    assert source.theta.grad.abs().max() > 1e-3


def test_a_coreset_larger_than_a_task_fails_before_training(tmp_path):
    with pytest.raises(ConfigError, match="--coreset_size") as error:
        train(small_config(tmp_path, use_replay=True, coreset_size=61), tasks=TASKS)
    assert "\n" not in str(error.value)
