"""The orthogonal regulariser: the study's formula; zero for orthogonal blocks; exact gradient."""
from __future__ import annotations

import torch

from cl_rnn.methods.finetune import FineTune
from cl_rnn.methods.ortho import OrthogonalPenalty, orthogonality_penalty
from cl_rnn.nets.rnn import NetSpec, RecurrentNet
from cl_rnn.train import train
from train_helpers import small_config, synthetic_tasks


def test_penalty_is_lambda_times_the_sum_over_gate_blocks_with_its_exact_gradient():
    net = RecurrentNet(NetSpec(rnn=(5, 3)))
    source = FineTune(net, net.init_weights())
    blocks = net.hh_blocks(source.theta)
    assert len(blocks) == 8
    expected = 0.3 * orthogonality_penalty(blocks)
    (expected_grad,) = torch.autograd.grad(expected, source.theta)
    penalty = OrthogonalPenalty(net, source, 0.3).penalty(0)
    penalty.backward()
    torch.testing.assert_close(penalty, expected)
    torch.testing.assert_close(source.theta.grad, expected_grad)


def test_orthogonal_blocks_cost_nothing():
    net = RecurrentNet(NetSpec(rnn=(6,)))
    assert orthogonality_penalty(net.hh_blocks(net.init_weights(orthogonal_hh=True))).item() < 1e-9


def test_the_elman_penalty_has_one_block_per_layer():
    net = RecurrentNet(NetSpec(rnn=(4,), lstm=False))
    source = FineTune(net, net.init_weights())
    torch.testing.assert_close(OrthogonalPenalty(net, source, 1.0).penalty(0),
                               orthogonality_penalty(net.hh_blocks(source.theta)))


def test_ortho_init_and_reg_learn_two_tasks(tmp_path):
    result = train(small_config(tmp_path, orthogonal_hh_init=True, orthogonal_hh_reg=1.0), tasks=synthetic_tasks())
    assert min(result.during) > 60
