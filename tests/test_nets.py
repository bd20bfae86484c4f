"""The recurrent network: the study's parameter counts, init, fused LSTM == torch's LSTM."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from cl_rnn import evaluation
from cl_rnn.batches import time_major
from cl_rnn.config import Config
from cl_rnn.nets import lstm_kernel
from cl_rnn.nets.lstm import lstm_sequence, to_torch_gate_order
from cl_rnn.nets.rnn import NetSpec, RecurrentNet


def net_for(**flags) -> RecurrentNet:
    return RecurrentNet(NetSpec.from_config(Config(**flags)))


@pytest.mark.parametrize("flags, count", [
    (dict(multi_head=True), 24_036),
    (dict(), 21_066),
    (dict(multi_head=True, use_vanilla_rnn=True), 9_540),
    (dict(multi_head=True, input_task_identity=True), 24_036 + 4 * 32 * 10),
])
def test_parameter_counts_match_the_study(flags, count):
    assert net_for(**flags).num_params == count


def test_init_is_uniform_within_one_over_sqrt_fan_in():
    net = net_for(multi_head=True, srnn_pre_fc_layers="20")
    pieces = net.unflatten(net.init_weights())
    assert pieces["pre0.weight"].abs().max() <= 1 / math.sqrt(128)
    assert pieces["rnn0.w_ih"].abs().max() <= 1 / math.sqrt(20)
    assert pieces["rnn0.b_hh"].abs().max() <= 1 / math.sqrt(32)
    assert pieces["out.weight"].abs().max() <= 1 / math.sqrt(32)
    assert pieces["rnn0.w_ih"].abs().max() > 0.9 / math.sqrt(20)


def test_orthogonal_init_makes_every_gate_block_orthogonal():
    net = net_for(multi_head=True)
    blocks = net.hh_blocks(net.init_weights(orthogonal_hh=True))
    assert len(blocks) == 4
    for block in blocks:
        torch.testing.assert_close(block @ block.t(), torch.eye(32), atol=1e-5, rtol=0)


@pytest.fixture(params=["c_kernel", "torch_ops"])
def recurrence(request, monkeypatch):
    """Run a test with the C kernel and with the torch-ops fallback."""
    if request.param == "torch_ops":
        monkeypatch.setattr(lstm_kernel, "load", lambda dtype=torch.float32: None)
    elif lstm_kernel.load() is None or lstm_kernel.load(torch.float64) is None:
        pytest.skip("no C compiler: the kernel is unavailable here")
    return request.param


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny ops: one thread, like train() (two threads on a shared machine only spin)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("act, with_gain, hidden", [("tanh", False, 16), ("tanh", True, 3), ("relu", True, 16),
                                                    ("relu", False, 3), ("linear", True, 3)])
def test_fused_lstm_gradients_pass_gradcheck(act, with_gain, hidden, recurrence):
    torch.manual_seed(0)
    steps, batch, inputs = 3, 2, 3
    args = [torch.randn(steps, batch, inputs, dtype=torch.double, requires_grad=True),
            torch.randn(4 * hidden, inputs, dtype=torch.double, requires_grad=True),
            torch.randn(4 * hidden, hidden, dtype=torch.double, requires_grad=True),
            torch.randn(4 * hidden, dtype=torch.double, requires_grad=True),
            torch.randn(4 * hidden, dtype=torch.double, requires_grad=True)]
    gain = torch.rand(hidden, dtype=torch.double) if with_gain else None
    assert torch.autograd.gradcheck(lambda x, a, b, c, d: lstm_sequence(x, a, b, c, gain, act, b_hh=d), args,
                                     fast_mode=True)


@pytest.mark.parametrize("hidden", [5, 16, 32])
def test_fused_lstm_equals_torch_lstm(hidden, recurrence):
    torch.manual_seed(1)
    x = torch.randn(10, 7, 12) * 3
    w_ih, w_hh = torch.randn(4 * hidden, 12) * 0.3, torch.randn(4 * hidden, hidden) * 0.3
    b_ih, b_hh = torch.randn(4 * hidden) * 0.3, torch.randn(4 * hidden) * 0.3
    reference = torch.nn.LSTM(12, hidden)
    with torch.no_grad():
        reference.weight_ih_l0.copy_(to_torch_gate_order(w_ih))
        reference.weight_hh_l0.copy_(to_torch_gate_order(w_hh))
        reference.bias_ih_l0.copy_(to_torch_gate_order(b_ih))
        reference.bias_hh_l0.copy_(to_torch_gate_order(b_hh))
    torch.testing.assert_close(lstm_sequence(x, w_ih, w_hh, b_ih, b_hh=b_hh), reference(x)[0])


def test_saturated_gates_and_nan_weights_behave(recurrence):
    x = torch.full((10, 2, 3), 255.0)
    w_ih, w_hh, b = torch.ones(8, 3) * 50, torch.ones(8, 2), torch.zeros(8)
    hs = lstm_sequence(x, w_ih, w_hh, b)
    assert torch.isfinite(hs).all()
    assert lstm_sequence(x, w_ih * math.nan, w_hh, b).isnan().all()


@pytest.mark.parametrize("flags", [
    dict(multi_head=True),
    dict(multi_head=True, rnn_arch="8,6", srnn_pre_fc_layers="10", srnn_post_fc_layers="7", net_act="relu"),
    dict(multi_head=True, use_vanilla_rnn=True, input_task_identity=True),
    dict(input_task_identity=True),
])
def test_fast_and_reference_forward_agree_with_gradients(flags, recurrence):
    torch.manual_seed(2)
    net = net_for(**flags)
    x = torch.rand(10, 5, 128) * 4
    gains = [torch.tensor([0.0, 1.0] * (h // 2)) for h in net.spec.rnn]
    for task in (3, torch.tensor([0, 1, 2, 9, 9])):
        for last_only in (True, False):
            weights = net.init_weights().requires_grad_()
            fast = net.forward(x, weights, task, last_only, gains)
            (grad_fast,) = torch.autograd.grad(fast.square().sum(), weights)
            slow = net.forward_reference(x, weights, task, last_only, gains)
            (grad_slow,) = torch.autograd.grad(slow.square().sum(), weights)
            assert fast.shape == (1 if last_only else 10, 5, 10)
            torch.testing.assert_close(fast, slow)
            torch.testing.assert_close(grad_fast, grad_slow)


def test_heads_of_other_tasks_get_no_gradient():
    net = net_for(multi_head=True)
    weights = net.init_weights().requires_grad_()
    net.forward(torch.rand(10, 4, 128), weights, task=2).sum().backward()
    head = net.unflatten(weights.grad)["out.weight"]
    assert head[20:30].abs().sum() > 0
    assert head[:20].abs().sum() == 0 and head[30:].abs().sum() == 0


def test_binary_unit_gains_silence_the_masked_units():
    net = net_for(multi_head=True)
    weights = net.init_weights().requires_grad_()
    gain = torch.ones(32)
    gain[:10] = 0
    net.forward(torch.rand(10, 4, 128), weights, 0, unit_gains=[gain]).sum().backward()
    pieces = net.unflatten(weights.grad)
    assert pieces["out.weight"][:, :10].abs().sum() == 0
    assert pieces["rnn0.w_hh"][:, :10].abs().sum() == 0
    assert pieces["out.weight"][:10, 10:].abs().sum() > 0


def test_truncated_backprop_only_reaches_the_last_steps():
    net = net_for(multi_head=True)
    weights = net.init_weights().requires_grad_()
    x = torch.rand(10, 2, 128, requires_grad=True)
    net.forward_reference(x, weights, 0, tbptt=3).sum().backward()
    assert x.grad[:7].abs().sum() == 0 and x.grad[7:].abs().sum() > 0


def test_a_wrongly_sized_weight_vector_is_refused():
    with pytest.raises(ValueError, match="flat weight vector of 24036"):
        net_for(multi_head=True).forward(torch.rand(10, 1, 128), torch.zeros(5), 0)


def test_the_study_network_as_one_node_passes_gradcheck(recurrence):
    net = RecurrentNet(NetSpec(rnn=(16,), num_tasks=2, classes_per_task=3, input_size=4, task_identity=True))
    weights = (net.init_weights() * 3).double().requires_grad_()
    x = torch.rand(5, 3, 4, dtype=torch.double) * 4
    gain = [torch.rand(16, dtype=torch.double)]
    assert torch.autograd.gradcheck(lambda w: net.forward(x, w, 1, unit_gains=gain), (weights,), fast_mode=True)


@pytest.mark.parametrize("chunk", [1, 7, 512])
def test_accuracy_in_chunks_is_the_accuracy_of_the_whole_set(chunk, monkeypatch):
    net = net_for(multi_head=True, rnn_arch="32", num_tasks=2, num_classes_per_task=5)
    torch.manual_seed(3)
    weights = net.init_weights()
    x = torch.randint(0, 256, (50, 10, 128), dtype=torch.uint8)
    logits = net.forward(time_major(x), weights, 1, last_only=True)[0]
    y = logits.argmax(1)
    y[::3] = (y[::3] + 1) % 5  # a third wrong: 66% where the chunks' counts add up right
    method = SimpleNamespace(weights=lambda task: weights, unit_gains=lambda task: None)
    monkeypatch.setattr(evaluation, "EVAL_CHUNK", chunk)
    assert evaluation.accuracy(net, method, 1, x, y, torch.device("cpu")) == 100.0 * 33 / 50
