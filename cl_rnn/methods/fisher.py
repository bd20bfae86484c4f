"""The empirical Fisher of EWC: the mean over samples of the squared gradient of each sample's
log-likelihood (true label, time-weighted), computed batched.

Two ways, same numbers (the tests hold them equal to a one-sample-at-a-time loop):

* ``single-LSTM`` networks (the study's): per-sample gradients from the LSTM's gate gradients.
  Samples never interact, so one batched backward gives every sample's gate gradients, and each
  weight's per-sample gradient is a sum of outer products (one ``bmm`` per matrix).
* any other network: ``torch.func`` (``vmap`` of ``grad``) over the plain-torch forward.

``tbptt`` k > 0 backpropagates only through the last k steps (the study's ``--tbptt_fisher``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.func import grad, vmap

from cl_rnn.batches import time_major
from cl_rnn.evaluation import needs_all_steps, step_weights, task_loss
from cl_rnn.nets.lstm import lstm_forward, lstm_gate_grads
from cl_rnn.nets.rnn import RecurrentNet

CHUNK = 256  # samples per batched pass (memory: about CHUNK x 100 KB for the study's net)


def empirical_fisher(net: RecurrentNet, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, task: int,
                     gains: list[torch.Tensor | None] | None, ts_weighting: str, tbptt: int) -> torch.Tensor:
    """Mean squared per-sample gradient w.r.t. the flat weights; ``x`` uint8 (N, T, I), ``y`` local labels."""
    theta = theta.detach()
    fisher = torch.zeros_like(theta)
    if len(y) == 0:
        return fisher
    # Truncation cuts the graph once (at step T-k); with a loss over every step, the earlier
    # steps still have their own gradients: that case goes the general way.
    batched = net.is_single_lstm and (tbptt <= 0 or not needs_all_steps(ts_weighting))
    chunk_sum = _lstm_chunk if batched else _vmap_chunk
    for start in range(0, len(y), CHUNK):
        xs = time_major(x[start:start + CHUNK], theta.device, theta.dtype)
        fisher += chunk_sum(net, theta, xs, y[start:start + CHUNK].to(theta.device), task, gains, ts_weighting,
                            tbptt)
    return fisher.div_(len(y))


def _vmap_chunk(net, theta, xs, ys, task, gains, ts_weighting, tbptt) -> torch.Tensor:
    weights = step_weights(ts_weighting, xs.shape[0])
    last_only = not needs_all_steps(ts_weighting)

    def loss(flat: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = net.forward_reference(x.unsqueeze(1), flat, task, last_only, gains, tbptt)
        return task_loss(logits, y.unsqueeze(0), weights)

    return vmap(grad(loss), in_dims=(None, 1, 0))(theta, xs, ys).pow_(2).sum(0)


@torch.no_grad()
def _lstm_chunk(net, theta, xs, ys, task, gains, ts_weighting, tbptt) -> torch.Tensor:
    p = net.unflatten(theta)
    gain = gains[0] if gains is not None else None
    x = net.with_task_identity(xs, task)
    trace = lstm_forward(x, p["rnn0.w_ih"], p["rnn0.w_hh"], p["rnn0.b_ih"], p["rnn0.b_hh"], gain, net.spec.act)
    steps = x.shape[0]
    rows = net.head_rows(task)
    d_logits, read = _loss_grad_at_outputs(trace.hs, p["out.weight"][rows], p["out.bias"][rows], ys, ts_weighting)
    d_hs = torch.zeros_like(trace.hs)
    d_hs[read] = d_logits @ p["out.weight"][rows]
    d_acts_t = lstm_gate_grads(trace, p["rnn0.w_hh"], gain, net.spec.act, d_hs)   # (4H, T, N)
    if 0 < tbptt < steps:  # the loss reads the last step only (see empirical_fisher)
        d_acts_t[:, :steps - tbptt] = 0
    per_sample = d_acts_t.permute(2, 0, 1)                                 # (N, 4H, T)
    squares = {
        "rnn0.w_ih": torch.bmm(per_sample, x.transpose(0, 1)).pow_(2).sum(0),
        "rnn0.w_hh": torch.bmm(per_sample[:, :, 1:], trace.hs[:-1].transpose(0, 1)).pow_(2).sum(0),
        "rnn0.b_ih": per_sample.sum(2).pow_(2).sum(0),
        "out.weight": torch.bmm(d_logits.permute(1, 2, 0), trace.hs[read].transpose(0, 1)).pow_(2).sum(0),
        "out.bias": d_logits.sum(0).pow_(2).sum(0),
    }
    squares["rnn0.b_hh"] = squares["rnn0.b_ih"]
    out = torch.zeros_like(theta)
    pieces = net.unflatten(out)
    for name, value in squares.items():
        target = pieces[name][rows] if name.startswith("out.") else pieces[name]
        target.copy_(value)
    return out


def _loss_grad_at_outputs(hs, weight, bias, ys, ts_weighting):
    """Per-sample d(loss)/d(logits) (S, N, C) at the steps the loss reads, and those steps."""
    steps = hs.shape[0]
    read = slice(0, steps) if needs_all_steps(ts_weighting) else slice(steps - 1, steps)
    logits = F.linear(hs[read], weight, bias)
    probs = torch.softmax(logits, dim=2)
    probs[:, torch.arange(len(ys)), ys] -= 1                            # d CE / d logits
    weights = step_weights(ts_weighting, steps)
    if weights is not None:
        probs *= weights.to(probs).view(-1, 1, 1)
    return probs, read
