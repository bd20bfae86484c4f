"""Online EWC: batched Fisher == one sample at a time; penalty zero at the anchor; it learns."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cl_rnn.evaluation import task_loss
from cl_rnn.methods import fisher
from cl_rnn.methods.build import build_method
from cl_rnn.methods.ewc import OnlineEWC
from cl_rnn.nets.rnn import NetSpec, RecurrentNet
from cl_rnn.train import train
from train_helpers import small_config, synthetic_tasks

TASKS = synthetic_tasks()


def ewc_for(**flags) -> tuple[RecurrentNet, OnlineEWC]:
    config = small_config(Path("."), use_ewc=True, **flags)
    net = RecurrentNet(NetSpec.from_config(config))
    method = build_method(config, net, torch.device("cpu"))
    return net, method.extras[0]


def test_fisher_is_the_mean_squared_gradient_of_each_sample():
    net, ewc = ewc_for()
    x, y = TASKS[0].x_train[:6], TASKS[0].y_train[:6]
    expected = torch.zeros(net.num_params)
    for k in range(6):
        theta = ewc.theta.detach().clone().requires_grad_()
        xs = x[k:k + 1].permute(1, 0, 2).float()
        task_loss(net.forward(xs, theta, 1), y[k:k + 1], torch.ones(1)).backward()
        expected += theta.grad ** 2
    torch.testing.assert_close(ewc.estimate_fisher(1, x, y), expected / 6, rtol=1e-4, atol=1e-9)


def test_truncated_fisher_differs_and_n_fisher_limits_the_samples():
    net, ewc = ewc_for(tbptt_fisher=1)
    x, y = TASKS[0].x_train[:8], TASKS[0].y_train[:8]
    truncated = ewc.estimate_fisher(0, x, y)
    ewc.tbptt = -1
    assert not torch.allclose(truncated, ewc.estimate_fisher(0, x, y))
    ewc.n_fisher = 0
    assert ewc.estimate_fisher(0, x, y).abs().sum() == 0


def test_penalty_is_zero_at_the_anchor_and_grows_away_from_it():
    net, ewc = ewc_for(ewc_lambda=10.0, ewc_gamma=0.5)
    assert ewc.penalty(0) is None
    ewc.after_task(0, TASKS[0])
    first = ewc.fisher.clone()
    assert ewc.penalty(1).item() == 0
    direction = torch.randn(net.num_params)
    with torch.no_grad():
        ewc.theta.add_(direction, alpha=0.01)
    near = ewc.penalty(1).item()
    with torch.no_grad():
        ewc.theta.add_(direction, alpha=0.01)
    far = ewc.penalty(1)
    assert 0 < near < far.item()
    expected = 5.0 * (first * (ewc.theta.detach() - ewc.anchor) ** 2).sum()
    torch.testing.assert_close(far, expected)
    far.backward()
    torch.testing.assert_close(ewc.theta.grad, 10.0 * first * (ewc.theta.detach() - ewc.anchor))
    ewc.num_tasks = 3
    ewc.after_task(1, TASKS[1])  # online: F <- F_new + gamma F_old
    fresh = ewc.estimate_fisher(1, TASKS[1].x_train, TASKS[1].y_train)
    torch.testing.assert_close(ewc.fisher, fresh + 0.5 * first)


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
