"""Fixed binary context-modulation masks (``--use_masks``): per task, which recurrent units are off.

For each task, once, and for each recurrent layer of H units, a shuffled set of
``int(H * mask_fraction)`` units gets gain 0 and the rest gain 1 (``--mask_fraction`` is the fraction
switched **off**: 0.6 of 32 units -> 19 off).  The gains scale the cell state before its
nonlinearity, ``h = o * act(gain * c)``: with act(0) = 0 (tanh, relu, linear) a switched-off unit
outputs 0 at every step, so each task trains and uses its own fixed subset of units.

The draws come from a private generator seeded with ``--random_seed``: the masks are the same in
every run with that seed and do not shift the global RNG streams (batches, inits) that fine-tuning sees.
"""
from __future__ import annotations

import torch

MASK_SEED_OFFSET = 7919  # keeps the mask generator's stream apart from torch's global one at the same seed


def units_off(hidden: int, mask_fraction: float) -> int:
    """How many of ``hidden`` units a mask switches off."""
    return int(hidden * mask_fraction)


def make_masks(num_tasks: int, hidden_sizes: tuple[int, ...], mask_fraction: float, seed: int,
               device: torch.device | str = "cpu") -> list[list[torch.Tensor]]:
    """``masks[task][layer]``: a (H,) float tensor of 0/1 gains."""
    generator = torch.Generator().manual_seed(seed + MASK_SEED_OFFSET)
    masks = []
    for _ in range(num_tasks):
        layers = []
        for hidden in hidden_sizes:
            gain = torch.ones(hidden)
            gain[torch.randperm(hidden, generator=generator)[:units_off(hidden, mask_fraction)]] = 0.0
            layers.append(gain.to(device))
        masks.append(layers)
    return masks
