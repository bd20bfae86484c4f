"""The task loss over time steps (``--ts_weighting``) and test accuracy."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from cl_rnn.batches import time_major
from cl_rnn.methods.base import Method
from cl_rnn.nets.rnn import RecurrentNet

DISCOUNT = 0.9
# clips per forward pass: each chunk's float inputs and activations are ~8 MB (a 2,000-clip test set at once:
# ~30 MB per evaluation thread, and a 10-task run's peak resident memory 505-535 MB instead of 448-455 MB);
# any chunk gives the same logits, and smaller ones barely slow an evaluation down (18-19 ms per 2,000 clips)
EVAL_CHUNK = 512


def needs_all_steps(ts_weighting: str) -> bool:
    """Whether the loss reads logits of every step (otherwise only the last one)."""
    return ts_weighting in ("discount", "none", "unpadded")


def step_weights(ts_weighting: str, steps: int) -> torch.Tensor | None:
    """Per-step weights of the loss, or None for an unweighted sum over steps.

    ``last`` and ``last_ten_percent`` (the last step for 10-step clips) read only the last step;
    ``discount`` weighs step t by 0.9^(T-1-t), normalised to sum 1; ``none``/``unpadded`` sum every
    step's loss unweighted (the study crashes on these two).
    """
    if ts_weighting in ("none", "unpadded"):
        return None
    if ts_weighting == "discount":
        weights = DISCOUNT ** torch.arange(steps - 1, -1, -1, dtype=torch.float32)
        return weights / weights.sum()
    return torch.ones(1)


def task_loss(logits: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Cross-entropy, batch mean per step, combined over the steps of ``logits`` (S, N, C)."""
    if logits.shape[0] == 1:
        return F.cross_entropy(logits[0], y)
    steps, batch, classes = logits.shape
    per_step = F.cross_entropy(logits.reshape(steps * batch, classes), y.repeat(steps),
                               reduction="none").view(steps, batch).mean(1)
    if weights is None:
        return per_step.sum()
    return per_step @ weights.to(per_step.device)


@torch.no_grad()
def accuracy(net: RecurrentNet, method: Method, task: int, x: torch.Tensor, y: torch.Tensor,
             device: torch.device) -> float:
    """Accuracy (%) of the last step's prediction; ``x`` uint8 (N, T, I), converted chunk by chunk."""
    if len(y) == 0:
        return float("nan")
    weights = method.weights(task)
    gains = method.unit_gains(task)
    correct = 0
    for start in range(0, len(y), EVAL_CHUNK):
        chunk = time_major(x[start:start + EVAL_CHUNK], device)
        logits = net.forward(chunk, weights, task, last_only=True, unit_gains=gains)[0]
        correct += int((logits.argmax(1) == y[start:start + EVAL_CHUNK].to(device)).sum())
    return 100.0 * correct / len(y)
