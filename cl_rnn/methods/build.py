"""From flags to a method: one weight source plus the extras built as Methods (``Regulariser``s are built
by ``methods.regularisers``)."""
from __future__ import annotations

import torch

from cl_rnn.config import Config
from cl_rnn.methods import registry
from cl_rnn.methods.base import Composite, Method
from cl_rnn.nets.rnn import RecurrentNet


def build_method(config: Config, net: RecurrentNet, device: torch.device) -> Method:
    """A fresh method for a run (and, with --train_from_scratch, for every task)."""
    source_spec, *others = registry.composition(config)
    source = source_spec.build(config, net, device)
    extras = [spec.build(config, net, source) for spec in others if spec.role == "extra" and spec.build]
    return Composite(source, extras) if extras else source
