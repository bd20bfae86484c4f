"""Chunked hypernetwork: the study's compression ratio, batched generation, the output regulariser."""
from __future__ import annotations

import shlex
from pathlib import Path

import pytest
import torch

import cl_rnn.learners.autograd
from cl_rnn.rules import from_argv
from cl_rnn.methods.build import build_method
from cl_rnn.methods.hnet import Hypernetwork, regulated_region, study_order
from cl_rnn.nets.hnet import ChunkedHypernet, HnetSpec
from cl_rnn.nets.rnn import NetSpec, RecurrentNet
from cl_rnn.train import train
from train_helpers import small_config, synthetic_tasks

README = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference" / "split_audioset_README.rst"
TASKS = synthetic_tasks()
HNET_FLAGS = dict(hnet_all=True, use_new_hnet=True, nh_hnet_type="chunked_hmlp", nh_hmlp_arch="10,10",
                  nh_chmlp_chunk_size=500, std_normal_emb=0.1, lr=0.005)


def study_line(marker: str) -> list[str]:
    lines = README.read_text().splitlines()
    line = next(text for text in lines if "train_split_audioset.py" in text and marker in text)
    return shlex.split(line.split("train_split_audioset.py", 1)[1])


def test_compression_ratio_of_the_study_hnet_line_is_0_98():
    config = from_argv(study_line("--hnet_all"))
    net = RecurrentNet(NetSpec.from_config(config))
    method = build_method(config, net, torch.device("cpu"))
    assert net.num_params == 24_036
    assert method.hnet.num_params == 22_760 + 13 * 32 + 10 * 32
    assert method.compression_ratio(net) == pytest.approx(0.98, abs=0.01)


def test_all_chunks_of_several_tasks_come_from_one_pass_and_are_cut_to_the_net():
    spec = HnetSpec(num_weights=1234, num_tasks=3, hidden=(7,), chunk_size=100, std_chunk_emb=0.1)
    hnet = ChunkedHypernet(spec)
    assert hnet.chunk_embs.shape == (13, 32)
    both = hnet.generate([2, 0])
    assert both.shape == (2, 1234)
    torch.testing.assert_close(both[0], hnet.generate([2])[0])
    torch.testing.assert_close(both[1], hnet.generate([0])[0])
    assert not torch.equal(both[0], both[1])  # the task embedding conditions the output
    no_bias = ChunkedHypernet(HnetSpec(num_weights=50, num_tasks=1, hidden=(7,), chunk_size=20, bias=False))
    assert no_bias.num_params == 64 * 7 + 7 * 20 + 3 * 32 + 32


def test_the_hypernetwork_writes_the_weights_in_the_study_order():
    """The study's net lists w_ih, b_ih, w_hh, b_hh with LSTM gate rows i, f, g, o (cl-rnn: o, i, f, g)."""
    net = RecurrentNet(NetSpec(rnn=(2,), num_tasks=1, classes_per_task=2, input_size=3))
    p = net.unflatten(torch.arange(net.num_params))

    def study_gates(piece):
        o, i, f, g = piece.split(2, 0)
        return torch.cat([i, f, g, o]).flatten()
    expected = torch.cat([study_gates(p["rnn0.w_ih"]), study_gates(p["rnn0.b_ih"]), study_gates(p["rnn0.w_hh"]),
                          study_gates(p["rnn0.b_hh"]), p["out.weight"].flatten(), p["out.bias"]])
    assert torch.equal(study_order(net), expected)
    method = Hypernetwork(net, ChunkedHypernet(HnetSpec(num_weights=net.num_params, num_tasks=1, hidden=(5,),
                                                        chunk_size=30)), beta=1.0)
    torch.testing.assert_close(method.generate([0])[0][study_order(net)], method.hnet.generate([0])[0])
    elman = RecurrentNet(NetSpec(rnn=(2,), num_tasks=1, classes_per_task=2, input_size=3, lstm=False))
    e = elman.unflatten(torch.arange(elman.num_params))
    assert torch.equal(study_order(elman), torch.cat([e[name].flatten() for name in (
        "rnn0.w_ih", "rnn0.b_ih", "rnn0.w_hh", "rnn0.b_hh", "rnn0.w_ho", "rnn0.b_ho", "out.weight", "out.bias")]))


def test_dropout_acts_only_while_training():
    net = RecurrentNet(NetSpec(rnn=(2,), num_tasks=1, classes_per_task=2, input_size=26))
    hnet = ChunkedHypernet(HnetSpec(num_weights=net.num_params, num_tasks=1, hidden=(50,), chunk_size=100, dropout=0.5))
    method = Hypernetwork(net, hnet, 1.0)
    with torch.no_grad():
        torch.testing.assert_close(method.weights(0), method.weights(0))
    assert not torch.equal(method.weights(0), method.weights(0))


def test_the_regulariser_counts_shared_weights_and_the_own_head_only():
    net = RecurrentNet(NetSpec(rnn=(4,), num_tasks=3, classes_per_task=2, input_size=5))
    region = regulated_region(net, 1)
    out_start, _ = net.offsets("out.weight")
    bias_start, bias_end = net.offsets("out.bias")
    assert region[:out_start].eq(1).all()
    rows = region[out_start:bias_start].view(6, 4)
    assert rows[2:4].eq(1).all() and rows[:2].eq(0).all() and rows[4:].eq(0).all()
    assert region[bias_start:bias_end].tolist() == [0, 0, 1, 1, 0, 0]


def test_penalty_is_beta_over_t_times_the_squared_drift_of_earlier_tasks():
    net = RecurrentNet(NetSpec(rnn=(4,), num_tasks=3, classes_per_task=2, input_size=5))
    method = Hypernetwork(net, ChunkedHypernet(HnetSpec(num_weights=net.num_params, num_tasks=3, hidden=(6,),
                                                        chunk_size=40)), beta=0.5)
    method.before_task(0, None)
    assert method.penalty(0) is None
    method.before_task(2, None)
    assert method.penalty(2).item() == pytest.approx(0.0, abs=1e-10)  # nothing moved yet
    before = [method.generate([j])[0].detach() for j in (0, 1)]
    with torch.no_grad():
        method.hnet.chunk_embs.add_(0.3)
    expected = sum(((method.generate([j])[0] - before[j]) * regulated_region(net, j)).pow(2).sum()
                   for j in (0, 1)) * 0.5 / 2
    penalty = method.penalty(2)
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-5)
    expected_grad = torch.autograd.grad(expected, method.hnet.shared)[0]
    torch.testing.assert_close(torch.autograd.grad(penalty, method.hnet.shared)[0], expected_grad)
    trained = method.parameters()  # the MLP and chunk embeddings (one flat leaf), the embeddings of tasks 0 to 2
    assert len(trained) == 4 and trained[0] is method.hnet.shared
    assert all(p is e for p, e in zip(trained[1:], method.hnet.task_embs))
    method.penalty(2).backward()
    assert method.hnet.task_embs[0].grad.abs().sum() > 0  # earlier tasks' embeddings train under the regulariser


def _drift_of_task_0(tmp_path, monkeypatch, beta: float) -> float:
    """How far task 0's generated weights moved while task 1 trained."""
    built = []

    def capture(config, net, device):
        built.append(build_method(config, net, device))
        return built[-1]

    monkeypatch.setattr(cl_rnn.learners.autograd, "build_method", capture)
    # random_seed: a seed where this tiny run learns (a few in twenty stay at chance, in the study's order as in others)
    result = train(small_config(tmp_path, overwrite=True, beta=beta, random_seed=43, **HNET_FLAGS), tasks=TASKS)
    method = built[0]
    with torch.no_grad():
        now = method.generate([0])[0]
    region = regulated_region(method.net, 0)
    assert min(result.during) > 60  # learns both tasks (chance: 33%)
    target = torch.empty_like(now)  # the targets: uncut chunks, in the hypernetwork's (the study's) order
    target[study_order(method.net)] = method.targets[0, :method.net.num_params]
    return float(((now - target) * region).norm() / (target * region).norm())


def test_the_regulariser_holds_earlier_tasks_generated_weights(tmp_path, monkeypatch):
    held = _drift_of_task_0(tmp_path, monkeypatch, beta=1.0)
    free = _drift_of_task_0(tmp_path, monkeypatch, beta=0.0)
    assert held < 0.02
    assert free > 5 * held


def test_one_pass_for_weights_and_regulariser_gives_the_same_penalty_and_gradients():
    net = RecurrentNet(NetSpec(rnn=(4,), num_tasks=3, classes_per_task=2, input_size=5))
    method = Hypernetwork(net, ChunkedHypernet(HnetSpec(num_weights=net.num_params, num_tasks=3, hidden=(6,),
                                                        chunk_size=40)), beta=0.5)
    method.before_task(2, None)
    with torch.no_grad():
        method.hnet.chunk_embs.add_(0.3)
    separate = method.penalty(2)
    separate.backward()
    shared = method.parameters()[:-1]  # the current task's embedding gets no gradient from the regulariser
    assert len(shared) == 3  # the MLP and chunk embeddings, the embeddings of tasks 0 and 1
    expected = [p.grad.clone() for p in shared]
    for p in shared:
        p.grad = None
    weights = method.weights(2)
    torch.testing.assert_close(weights, method.generate([2])[0])
    merged = method.penalty(2)
    merged.backward()
    torch.testing.assert_close(merged, separate)
    for p, grad in zip(shared, expected):
        torch.testing.assert_close(p.grad, grad)
