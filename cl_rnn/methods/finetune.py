"""Fine-tuning: the main net's own weights, trained on every task in turn, nothing added."""
from __future__ import annotations

import torch

from cl_rnn.methods.base import Method
from cl_rnn.methods.registry import MethodSpec
from cl_rnn.nets.rnn import RecurrentNet


class FineTune(Method):
    """The weight source of every baseline: one flat trainable vector ``theta``."""

    name = "finetune"

    def __init__(self, net: RecurrentNet, theta: torch.Tensor):
        self.net = net
        self.theta = theta.detach().clone().requires_grad_(True)

    @classmethod
    def fresh(cls, net: RecurrentNet, orthogonal_hh_init: bool, device: torch.device) -> "FineTune":
        """Freshly initialised weights (draws from torch's global generator)."""
        return cls(net, net.init_weights(orthogonal_hh=orthogonal_hh_init).to(device))

    def parameters(self) -> list[torch.Tensor]:
        return [self.theta]

    def weights(self, task: int) -> torch.Tensor:
        return self.theta


def build(config, net: RecurrentNet, device: torch.device) -> FineTune:
    return FineTune.fresh(net, config.orthogonal_hh_init, device)


SPEC = MethodSpec("finetune", flag=None, role="source", build=build,
                  summary="the main net's own weights, trained on every task in turn (the default source)")
