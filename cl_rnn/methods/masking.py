"""Masking (``--use_masks``): fine-tuning's shared weights, with a fixed binary mask per task.

The weights are the main net's own (one trainable flat vector, like fine-tuning, so SI and EWC
can watch them: masking + SI is ``Composite(Masking, [SI])``).  Each task switches off its own
fixed subset of recurrent units (``cl_rnn.nets.masks``) through the net's ``unit_gains`` hook, in
training, validation, test and the EWC Fisher alike.  The study's masking forces
``--no_context_mod_outputs`` and ``--dont_softplus_gains`` (the gains are plain 0/1 values and the
output layer is not modulated); ``rules.py`` warns when they are not set, and they are implied here.
"""
from __future__ import annotations

import torch

from cl_rnn.methods.finetune import FineTune
from cl_rnn.methods.registry import MethodSpec
from cl_rnn.nets.masks import make_masks
from cl_rnn.nets.rnn import RecurrentNet


class Masking(FineTune):
    name = "masks"

    def __init__(self, net: RecurrentNet, theta: torch.Tensor, masks: list[list[torch.Tensor]]):
        super().__init__(net, theta)
        if len(masks) < net.spec.num_tasks:
            raise ValueError(f"--use_masks: {len(masks)} masks for {net.spec.num_tasks} tasks")
        self.masks = masks

    @classmethod
    def fresh_masked(cls, net: RecurrentNet, orthogonal_hh_init: bool, mask_fraction: float, seed: int,
                     device: torch.device) -> "Masking":
        """Freshly initialised weights (global generator, as fine-tuning) and the seed's masks."""
        theta = net.init_weights(orthogonal_hh=orthogonal_hh_init).to(device)
        masks = make_masks(net.spec.num_tasks, net.spec.rnn, mask_fraction, seed, device)
        return cls(net, theta, masks)

    def unit_gains(self, task: int) -> list[torch.Tensor | None]:
        return self.masks[task]


SPEC = MethodSpec("masks", flag="use_masks", role="source", excludes=("hnet", "replay"),
                  implies={"no_context_mod_outputs": True, "dont_softplus_gains": True},
                  build=lambda config, net, device: Masking.fresh_masked(
                      net, config.orthogonal_hh_init, config.mask_fraction, config.random_seed, device),
                  summary="a fixed random binary mask of the recurrent units per task")
