"""Online EWC: batched Fisher == one sample at a time; penalty zero at the anchor, exact gradient; it learns."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from cl_rnn.evaluation import task_loss
from cl_rnn.config import Config
from cl_rnn.methods import fisher, registry
from cl_rnn.methods.base import Members
from cl_rnn.methods.ewc import OnlineEWC, task_fisher
from cl_rnn.nets.rnn import NetSpec, RecurrentNet
from cl_rnn.train import train
from train_helpers import small_config, synthetic_tasks

TASKS = synthetic_tasks()


def ewc_for(**flags) -> tuple[Config, RecurrentNet, OnlineEWC, torch.Tensor]:
    """A one-member EWC regulariser and its weights [1, W]."""
    config = small_config(Path("."), use_ewc=True, **flags)
    net = RecurrentNet(NetSpec.from_config(config))
    theta = net.init_weights().view(1, -1)
    return config, net, registry.get("ewc").batched(Members([config], net, theta, theta)), theta


def clips(task: int, count: int) -> SimpleNamespace:
    return SimpleNamespace(x_train=TASKS[task].x_train[:count], y_train=TASKS[task].y_train[:count])


def test_fisher_is_the_mean_squared_gradient_of_each_sample():
    config, net, _, theta = ewc_for()
    x, y = TASKS[0].x_train[:6], TASKS[0].y_train[:6]
    expected = torch.zeros(net.num_params)
    for k in range(6):
        weights = theta[0].clone().requires_grad_()
        xs = x[k:k + 1].permute(1, 0, 2).float()
        task_loss(net.forward(xs, weights, 1), y[k:k + 1], torch.ones(1)).backward()
        expected += weights.grad ** 2
    torch.testing.assert_close(task_fisher(config, net, theta[0], clips(0, 6), 1, None), expected / 6,
                               rtol=1e-4, atol=1e-9)


def test_truncated_fisher_differs_and_n_fisher_limits_the_samples():
    config, net, _, theta = ewc_for(tbptt_fisher=1)
    truncated = task_fisher(config, net, theta[0], clips(0, 8), 0, None)
    assert not torch.allclose(truncated, task_fisher(replace(config, tbptt_fisher=-1), net, theta[0], clips(0, 8), 0,
                                                     None))
    assert task_fisher(replace(config, n_fisher=0), net, theta[0], clips(0, 8), 0, None).abs().sum() == 0


def test_penalty_is_zero_at_the_anchor_and_grows_away_from_it_with_its_exact_gradient():
    config, net, ewc, theta = ewc_for(ewc_lambda=10.0, ewc_gamma=0.5)
    grad = torch.zeros_like(theta)
    assert ewc.add_grad(theta, grad, 0) is None
    first = task_fisher(config, net, theta[0], TASKS[0], 0, None)[None]
    ewc.after_task(theta, 0, False, lambda: first)
    assert ewc.add_grad(theta, grad, 1).item() == 0 and grad.abs().sum() == 0
    direction = torch.randn(net.num_params)
    near = ewc.add_grad(theta + 0.01 * direction, torch.zeros_like(theta), 1).item()
    moved = theta + 0.02 * direction
    far = ewc.add_grad(moved, grad, 1)
    assert 0 < near < far.item()
    torch.testing.assert_close(far, 5.0 * (first * (moved - ewc.anchor) ** 2).sum(1))
    torch.testing.assert_close(grad, 10.0 * first * (moved - ewc.anchor))
    second = task_fisher(config, net, moved[0], TASKS[1], 1, None)[None]
    ewc.after_task(moved, 1, False, lambda: second)  # online: F <- F_new + gamma F_old
    torch.testing.assert_close(ewc.fisher, second + 0.5 * first)
    ewc.after_task(moved, 2, True, lambda: 1 / 0)  # the last task: no Fisher
    torch.testing.assert_close(ewc.fisher, second + 0.5 * first)


def test_ewc_learns_two_tasks_and_remembers_more_than_fine_tuning(tmp_path):
    plain = train(small_config(tmp_path, overwrite=True, n_iter=80), tasks=TASKS)
    ewc = train(small_config(tmp_path, overwrite=True, n_iter=80, use_ewc=True, ewc_lambda=1e4), tasks=TASKS)
    assert min(ewc.during) > 60
    assert ewc.accuracy_matrix[1, 0] >= plain.accuracy_matrix[1, 0]
    assert ewc.method == "ewc"


def test_ewc_with_task_identity_is_composition(tmp_path):
    result = train(small_config(tmp_path, use_ewc=True, input_task_identity=True, ewc_lambda=10.0), tasks=TASKS)
    assert min(result.during) > 60


@pytest.mark.parametrize("flags, weighting, tbptt", [
    (dict(), "last", -1), (dict(), "discount", -1), (dict(input_task_identity=True), "none", -1),
    (dict(multi_head=False), "last_ten_percent", 1)])
def test_batched_lstm_fisher_equals_the_vmap_fisher(flags, weighting, tbptt):
    config = small_config(Path("."), **flags)
    net = RecurrentNet(NetSpec.from_config(config))
    theta = net.init_weights()
    x = TASKS[1].x_train[:10].permute(1, 0, 2).float()
    y = TASKS[1].y_train[:10]
    gains = [(torch.arange(16) % 3 != 0).float()]
    fast = fisher._lstm_chunk(net, theta, x, y, 1, gains, weighting, tbptt)
    slow = fisher._vmap_chunk(net, theta, x, y, 1, gains, weighting, tbptt)
    torch.testing.assert_close(fast, slow, rtol=1e-4, atol=1e-8)
    assert fast.abs().sum() > 0
