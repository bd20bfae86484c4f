"""The orthogonal regulariser: the study's formula; zero for orthogonal blocks; exact gradient."""
from __future__ import annotations

import torch

from cl_rnn.config import Config
from cl_rnn.methods import registry
from cl_rnn.methods.base import Members
from cl_rnn.methods.ortho import orthogonality_penalty
from cl_rnn.nets.rnn import NetSpec, RecurrentNet
from cl_rnn.train import train
from train_helpers import small_config, synthetic_tasks


def penalty_and_grad(net: RecurrentNet, theta: torch.Tensor, strength: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The one-member regulariser's penalty value and the gradient it adds to a zero buffer."""
    config = Config(orthogonal_hh_reg=strength)
    rows = theta.detach().view(1, -1)
    regulariser = registry.get("ortho_reg").batched(Members([config], net, rows, rows))
    grad = torch.zeros_like(rows)
    return regulariser.add_grad(rows, grad, 0)[0], grad[0]


def test_penalty_is_lambda_times_the_sum_over_gate_blocks_with_its_exact_gradient():
    net = RecurrentNet(NetSpec(rnn=(5, 3)))
    theta = net.init_weights().requires_grad_()
    blocks = net.hh_blocks(theta)
    assert len(blocks) == 8
    expected = 0.3 * orthogonality_penalty(blocks)
    (expected_grad,) = torch.autograd.grad(expected, theta)
    penalty, grad = penalty_and_grad(net, theta, 0.3)
    torch.testing.assert_close(penalty, expected.detach())
    torch.testing.assert_close(grad, expected_grad)


def test_orthogonal_blocks_cost_nothing():
    net = RecurrentNet(NetSpec(rnn=(6,)))
    assert orthogonality_penalty(net.hh_blocks(net.init_weights(orthogonal_hh=True))).item() < 1e-9


def test_the_elman_penalty_has_one_block_per_layer():
    net = RecurrentNet(NetSpec(rnn=(4,), lstm=False))
    theta = net.init_weights()
    torch.testing.assert_close(penalty_and_grad(net, theta, 1.0)[0], orthogonality_penalty(net.hh_blocks(theta)))


def test_ortho_init_and_reg_learn_two_tasks(tmp_path):
    result = train(small_config(tmp_path, orthogonal_hh_init=True, orthogonal_hh_reg=1.0), tasks=synthetic_tasks())
    assert min(result.during) > 60
