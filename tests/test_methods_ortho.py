"""The orthogonal regulariser: the study's formula; zero for orthogonal blocks."""
from __future__ import annotations

import torch

from cl_rnn.methods.ortho import OrthogonalPenalty, orthogonality_penalty
from cl_rnn.methods.finetune import FineTune
from cl_rnn.nets.rnn import NetSpec, RecurrentNet
from cl_rnn.train import train
from train_helpers import small_config, synthetic_tasks


def test_penalty_is_lambda_times_the_sum_over_gate_blocks():
    net = RecurrentNet(NetSpec(rnn=(5, 3)))
    weights = net.init_weights()
    expected = sum(((b @ b.t() - torch.eye(b.shape[0])) ** 2).sum() for b in net.hh_blocks(weights))
    method = OrthogonalPenalty(net, FineTune(net, weights), 0.3)
    torch.testing.assert_close(method.penalty(0), 0.3 * expected)
    assert len(net.hh_blocks(weights)) == 8


def test_orthogonal_blocks_cost_nothing():
    net = RecurrentNet(NetSpec(rnn=(6,)))
    assert orthogonality_penalty(net.hh_blocks(net.init_weights(orthogonal_hh=True))).item() < 1e-9


def test_ortho_init_and_reg_learn_two_tasks(tmp_path):
    result = train(small_config(tmp_path, orthogonal_hh_init=True, orthogonal_hh_reg=1.0), tasks=synthetic_tasks())
    assert min(result.during) > 60
