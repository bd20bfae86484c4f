"""SI: importances are non-negative and grow with the path; the hypothetical Adam step is exact."""
from __future__ import annotations

import torch

from cl_rnn.adam import Adam
from cl_rnn.config import Config
from cl_rnn.methods import registry
from cl_rnn.methods.base import Members
from cl_rnn.methods.si import SynapticIntelligence, adam_update, add_adam_path
from cl_rnn.nets.rnn import NetSpec, RecurrentNet
from cl_rnn.train import train
from train_helpers import small_config, synthetic_tasks

TASKS = synthetic_tasks()
NET = RecurrentNet(NetSpec(rnn=(4,), num_tasks=2, classes_per_task=3))


def si_and_weights() -> tuple[SynapticIntelligence, torch.Tensor]:
    """A one-member SI regulariser and the flat weights it watches (a leaf the optimizer steps)."""
    theta = torch.zeros(NET.num_params, requires_grad=True)
    rows = theta.detach().view(1, -1)
    config = Config(use_si=True, si_lambda=1.0, num_tasks=3)
    return registry.get("si").batched(Members([config], NET, rows, rows)), theta


def walk(si: SynapticIntelligence, theta: torch.Tensor, steps: int, grad_scale: float, uphill: bool = False) -> None:
    """Gradient descent on a quadratic bowl, calling SI's hooks like the trainer does."""
    optimizer = torch.optim.SGD([theta], lr=0.1, maximize=uphill)
    rows = theta.detach().view(1, -1)
    si.before_task(rows, 0)
    target = torch.ones_like(theta)
    for _ in range(steps):
        theta.grad = None
        (grad_scale * (theta - target).pow(2).sum()).backward()
        si.before_step(rows, theta.grad.view(1, -1), [(optimizer, theta)])
        optimizer.step()
        si.after_step(rows, theta.grad.view(1, -1))


def test_importances_are_non_negative_and_grow_with_the_path():
    (short, short_theta), (long, long_theta) = si_and_weights(), si_and_weights()
    walk(short, short_theta, 2, 1.0)
    walk(long, long_theta, 8, 1.0)
    assert (short.omega > 0).all() and (long.omega > short.omega).all()  # the path integral grows
    rows = short_theta.detach().view(1, -1)
    short.after_task(rows, 0, False, fisher=None)
    long.after_task(long_theta.detach().view(1, -1), 0, False, fisher=None)
    assert (short.importance > 0).all() and (long.importance > 0).all()
    assert short.add_grad(rows, torch.zeros_like(rows), 1).item() == 0 and (short.omega == 0).all()
    uphill, uphill_theta = si_and_weights()
    walk(uphill, uphill_theta, 3, 1.0, uphill=True)  # moving against the gradient: negative path integral, clipped
    uphill.after_task(uphill_theta.detach().view(1, -1), 0, False, fisher=None)
    assert (uphill.importance == 0).all()


def test_the_last_task_adds_no_importance():
    si, theta = si_and_weights()
    walk(si, theta, 3, 1.0)
    rows = theta.detach().view(1, -1)
    si.after_task(rows, 0, True, fisher=None)
    assert si.importance is None and si.add_grad(rows, torch.zeros_like(rows), 1) is None


def test_hypothetical_adam_update_equals_a_real_step():
    torch.manual_seed(0)
    param = torch.randn(20, requires_grad=True)
    optimizer = torch.optim.Adam([param], lr=0.01, betas=(0.8, 0.999), weight_decay=0.1)
    for _ in range(3):
        grad = torch.randn(20)
        predicted = adam_update(optimizer, param, grad)
        before = param.detach().clone()
        param.grad = grad
        optimizer.step()
        torch.testing.assert_close(param.detach() - before, predicted)


def test_si_learns_two_tasks_and_remembers_more_than_fine_tuning(tmp_path):
    plain = train(small_config(tmp_path, overwrite=True), tasks=TASKS)
    for task_loss_only in (False, True):
        si = train(small_config(tmp_path, overwrite=True, use_si=True, si_lambda=10.0,
                                si_task_loss_only=task_loss_only), tasks=TASKS)
        assert min(si.during) > 60
        assert si.accuracy_matrix[1, 0] >= plain.accuracy_matrix[1, 0]


def test_the_fused_path_update_equals_grad_times_the_adam_step():
    torch.manual_seed(1)
    param = torch.randn(50, requires_grad=True)
    optimizer = Adam([param], lr=0.003, betas=(0.9, 0.999), weight_decay=0.01)
    for _ in range(3):
        grad = torch.randn(50)
        omega, expected = torch.rand(50), None
        expected = omega - grad * adam_update(optimizer, param, grad)
        add_adam_path(omega, optimizer, param, grad)
        torch.testing.assert_close(omega, expected)
        param.grad = grad
        optimizer.step()

