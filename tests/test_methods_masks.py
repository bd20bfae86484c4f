"""Masking: each task's own fixed subset of units, mask_fraction honoured, used everywhere; masking + SI."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import cl_rnn.population
from cl_rnn.config import Config
from cl_rnn.evaluation import task_loss
from cl_rnn.methods.build import build_method
from cl_rnn.methods.ewc import task_fisher
from cl_rnn.methods.masking import Masking
from cl_rnn.learners import make_learner
from cl_rnn.methods.si import SynapticIntelligence
from cl_rnn.nets.lstm import lstm_sequence
from cl_rnn.nets.masks import make_masks, units_off
from cl_rnn.nets.rnn import NetSpec, RecurrentNet
from cl_rnn.batches import time_major
from cl_rnn.train import train
from train_helpers import small_config, synthetic_tasks

TASKS = synthetic_tasks()
MASK_FLAGS = dict(use_masks=True, no_context_mod_outputs=True, dont_softplus_gains=True)


def test_mask_fraction_is_the_fraction_switched_off():
    assert units_off(32, 0.6) == 19 and units_off(32, 0.4) == 12 and units_off(32, 0.0) == 0
    masks = make_masks(10, (32, 20), 0.6, seed=42)
    for layers in masks:
        assert [int((g == 0).sum()) for g in layers] == [19, 12]
        assert all(set(g.tolist()) <= {0.0, 1.0} for g in layers)


def test_each_task_has_its_own_subset_fixed_by_the_seed():
    masks = make_masks(10, (32,), 0.6, seed=42)
    subsets = {tuple(layers[0].nonzero().flatten().tolist()) for layers in masks}
    assert len(subsets) == 10
    again = make_masks(10, (32,), 0.6, seed=42)
    assert all(torch.equal(a[0], b[0]) for a, b in zip(masks, again))
    other = make_masks(10, (32,), 0.6, seed=0)
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(masks, other))


def test_switched_off_units_neither_act_nor_learn():
    net = RecurrentNet(NetSpec(rnn=(8,), num_tasks=2, classes_per_task=3))
    method = Masking.fresh_masked(net, False, 0.5, seed=1, device=torch.device("cpu"))
    gains = method.unit_gains(1)[0]
    off = gains == 0
    x = time_major(TASKS[1].x_train[:16])
    p = net.unflatten(method.theta.detach())
    hidden = lstm_sequence(x, p["rnn0.w_ih"], p["rnn0.w_hh"], p["rnn0.b_ih"] + p["rnn0.b_hh"], gains)
    assert hidden[:, :, off].abs().max() < 1e-6 < hidden[:, :, ~off].abs().max()  # exact 0 up to tanh's rounding
    loss = task_loss(net.forward(x, method.theta, 1, unit_gains=method.unit_gains(1)), TASKS[1].y_train[:16],
                     torch.ones(1))
    loss.backward()
    w_ih = net.unflatten(method.theta.grad)["rnn0.w_ih"].view(4, 8, -1)   # gate blocks x units x inputs
    assert w_ih[:, off].abs().max() < 1e-5 * w_ih[:, ~off].abs().max()
    out = net.unflatten(method.theta.grad)["out.weight"][net.head_rows(1)]
    assert out[:, off].abs().max() < 1e-5 * out[:, ~off].abs().max()


def test_the_fisher_sees_the_masks():
    config = Config(num_tasks=2, num_classes_per_task=3, rnn_arch="8", use_ewc=True, mask_fraction=0.5, **MASK_FLAGS)
    net = RecurrentNet(NetSpec.from_config(config))
    method = build_method(config, net, torch.device("cpu"))
    off = method.unit_gains(0)[0] == 0
    clips = SimpleNamespace(x_train=TASKS[0].x_train[:20], y_train=TASKS[0].y_train[:20])
    fisher = task_fisher(config, net, method.theta, clips, 0, method.unit_gains(0))
    w_ih = net.unflatten(fisher)["rnn0.w_ih"].view(4, 8, -1)
    assert w_ih[:, off].max() < 1e-8 * w_ih[:, ~off].max()


def _run(tmp_path, monkeypatch, torch_ops: bool = False, **flags):
    """A run alone and the learner that trained it: the kernel learner, or with ``torch_ops`` the
    autograd learner over the ``Masking`` method (a run alone on a GPU)."""
    built = []

    def capture(members, net, tasks, device, _torch_ops, threads=1):
        built.append(make_learner(members, net, tasks, device, torch_ops, threads))
        return built[-1]

    monkeypatch.setattr(cl_rnn.population, "make_learner", capture)
    return train(small_config(tmp_path, overwrite=True, **flags), tasks=TASKS), built[0]


@pytest.mark.parametrize("torch_ops", [False, True])
def test_masking_learns_two_tasks_with_the_masks_of_its_seed(tmp_path, monkeypatch, torch_ops):
    result, learner = _run(tmp_path, monkeypatch, torch_ops, mask_fraction=0.5, **MASK_FLAGS)
    assert min(result.during) > 60  # chance: 33%
    expected = make_masks(2, (16,), 0.5, seed=42)
    if torch_ops:
        assert isinstance(learner.method, Masking)
    assert all(torch.equal(learner.view(0).unit_gains(t)[0], expected[t][0]) for t in range(2))


@pytest.mark.parametrize("torch_ops", [False, True])
def test_masking_with_si_is_masks_plus_si_over_the_shared_weights(tmp_path, monkeypatch, torch_ops):
    result, learner = _run(tmp_path, monkeypatch, torch_ops, mask_fraction=0.5, use_si=True, si_lambda=10.0,
                           si_task_loss_only=True, clip_grad_norm=1.0, **MASK_FLAGS)
    if torch_ops:
        assert isinstance(learner.method, Masking) and learner.regularisers.leaf is learner.method.theta
    (si,) = learner.regularisers.all if torch_ops else learner.regularisers
    assert isinstance(si, SynapticIntelligence)
    assert si.importance is not None and (si.importance >= 0).all()
    assert min(result.during) > 60
