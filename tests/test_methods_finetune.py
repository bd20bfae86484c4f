"""The method protocol: fine-tuning adds nothing; composition reaches every member."""
from __future__ import annotations

import torch

from cl_rnn.config import Config
from cl_rnn.methods.base import Composite, Method
from cl_rnn.methods.build import build_method
from cl_rnn.methods import registry
from cl_rnn.methods.finetune import FineTune
from cl_rnn.methods.ortho import OrthogonalPenalty
from cl_rnn.methods.regularisers import Regularisers
from cl_rnn.methods.si import SynapticIntelligence
from cl_rnn.nets.rnn import NetSpec, RecurrentNet

NET = RecurrentNet(NetSpec.from_config(Config(multi_head=True, rnn_arch="8")))


def test_fine_tuning_trains_its_own_weights_and_adds_nothing():
    method = build_method(Config(multi_head=True, rnn_arch="8"), NET, torch.device("cpu"))
    assert isinstance(method, FineTune) and method.name == "finetune"
    assert method.parameters() == [method.theta] and method.theta.requires_grad
    assert method.weights(3) is method.theta
    assert method.penalty(3) is None and method.unit_gains(3) is None
    assert method.compression_ratio(NET) == 1.0


class Recorder(Method):
    name = "recorder"

    def __init__(self, calls, value):
        self.calls, self.value = calls, value

    def penalty(self, task):
        return torch.tensor(self.value)

    def before_task(self, task, data):
        self.calls.append(("before", self.value, task))

    def after_task(self, task, data):
        self.calls.append(("after", self.value, task))


def test_composite_sums_penalties_and_calls_every_member_source_first():
    calls = []
    source = FineTune(NET, NET.init_weights())
    method = Composite(source, [Recorder(calls, 1.0), Recorder(calls, 2.0)])
    assert method.name == "recorder+recorder"
    assert method.penalty(0).item() == 3.0
    assert method.weights(0) is source.theta and method.parameters() == [source.theta]
    method.before_task(1, None)
    method.after_task(1, None)
    assert calls == [("before", 1.0, 1), ("before", 2.0, 1), ("after", 1.0, 1), ("after", 2.0, 1)]


def test_a_runs_regularisers_watch_the_fine_tuning_sources_weights():
    config = Config(multi_head=True, rnn_arch="8", use_si=True, orthogonal_hh_reg=0.5)
    method = build_method(config, NET, torch.device("cpu"))
    assert isinstance(method, FineTune) and len(method.parameters()) == 1
    regularisers = Regularisers(config, NET, method)
    assert [type(r) for r in regularisers.all] == [SynapticIntelligence, OrthogonalPenalty]
    assert regularisers.leaf is method.theta and regularisers.theta.data_ptr() == method.theta.data_ptr()
    assert registry.run_name(config) == "si+ortho_reg"
