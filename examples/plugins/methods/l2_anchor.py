"""L2 anchor: the weights are pulled toward where the previous task left them.

A small example of a method added from outside cl-rnn (``CL_RNN_PLUGINS=examples/plugins``): an extra
(a regulariser watching the weight source), with two flags of its own.  Penalty during task t > 0::

    l2_anchor_strength * || theta - theta*_{t-1} ||^2
"""
from __future__ import annotations

import torch

from cl_rnn.methods.base import Method
from cl_rnn.methods.registry import MethodSpec

FLAGS = {"use_l2_anchor": (False, "L2 anchor: pull the weights toward the previous task's."),
         "l2_anchor_strength": (0.01, "Strength of the L2 anchor.")}


class L2Anchor(Method):
    name = "l2_anchor"

    def __init__(self, source: Method, strength: float):
        self.source, self.strength = source, strength
        self.anchor: torch.Tensor | None = None  # a tensor attribute: checkpoints keep it

    def penalty(self, task: int) -> torch.Tensor | None:
        if self.anchor is None:
            return None
        return self.strength * (self.source.weights(task) - self.anchor).pow(2).sum()

    def after_task(self, task: int, data) -> None:
        self.anchor = self.source.weights(task).detach().clone()


SPEC = MethodSpec("l2_anchor", flag="use_l2_anchor", role="extra", order=50, excludes=("hnet", "multitask"),
                  not_batched="--use_l2_anchor is not batched",
                  build=lambda config, net, source: L2Anchor(source, config.l2_anchor_strength),
                  summary="an L2 pull toward the previous task's weights")
