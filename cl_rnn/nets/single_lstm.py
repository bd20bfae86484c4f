"""The study's network (one LSTM layer, then the task's head on the last step) as one autograd node.

The general forward builds a small graph around the LSTM node: a split of the flat weight vector
into views, slices for the task's head rows, the output layer.  Its backward then runs a node per
piece and concatenates their gradients.  Here the whole network takes the flat vector and its
backward writes every gradient straight into one flat buffer: the same numbers with a few dozen
fewer small ops per training step.
"""
from __future__ import annotations

import torch

from cl_rnn.nets.lstm import LSTMTrace, lstm_forward, lstm_gate_grads, lstm_weight_grads


class SingleLSTMHead(torch.autograd.Function):
    """``logits (1, N, C) = SingleLSTMHead.apply(weights, x, net, task, gain)``."""

    @staticmethod
    def forward(ctx, weights, x, net, task, gain):
        p = _views(net, weights)
        rows = net.head_rows(task)
        trace = lstm_forward(x, p["rnn0.w_ih"], p["rnn0.w_hh"], p["rnn0.b_ih"], p["rnn0.b_hh"], gain, net.spec.act)
        logits = torch.addmm(p["out.bias"][rows], trace.hs[-1], p["out.weight"][rows].t())
        ctx.net, ctx.rows, ctx.kernel = net, rows, trace.kernel
        ctx.save_for_backward(weights, x, trace.acts, trace.cells, trace.squashed, trace.hs, gain)
        return logits.unsqueeze(0)

    @staticmethod
    def backward(ctx, d_logits):
        weights, x, acts, cells, squashed, hs, gain = ctx.saved_tensors
        net, rows = ctx.net, ctx.rows
        p = _views(net, weights)
        grad = torch.zeros_like(weights)
        g = net.unflatten(grad)
        d_hs = head_backward(d_logits[0], hs, p["out.weight"][rows], g["out.weight"][rows], g["out.bias"][rows])
        trace = LSTMTrace(acts, cells, squashed, hs, ctx.kernel)
        lstm_backward_into(g, x, trace, p["rnn0.w_hh"], gain, net.spec.act, d_hs)
        return grad, None, None, None, None


def head_backward(d_logits: torch.Tensor, hs: torch.Tensor, weight: torch.Tensor, d_weight: torch.Tensor,
                  d_bias: torch.Tensor) -> torch.Tensor:
    """The output layer on the last step, backward: writes its weight and bias gradients into
    ``d_weight`` and ``d_bias``; returns the gradient of every step's hidden state."""
    torch.mm(d_logits.t(), hs[-1], out=d_weight)
    torch.sum(d_logits, 0, out=d_bias)
    d_hs = torch.zeros_like(hs)
    torch.mm(d_logits, weight, out=d_hs[-1])
    return d_hs


def lstm_backward_into(g: dict[str, torch.Tensor], x: torch.Tensor, trace: LSTMTrace, w_hh: torch.Tensor,
                       gain: torch.Tensor | None, act: str, d_hs: torch.Tensor, threads: int = 1) -> None:
    """The LSTM layer, backward: writes its gradients into the views ``g`` of the flat gradient."""
    d_acts_t = lstm_gate_grads(trace, w_hh, gain, act, d_hs, threads)
    d_w_ih, d_w_hh, d_bias = lstm_weight_grads(d_acts_t, x, trace.hs, threads)
    g["rnn0.w_ih"].copy_(d_w_ih)
    g["rnn0.w_hh"].copy_(d_w_hh)
    g["rnn0.b_ih"].copy_(d_bias)
    g["rnn0.b_hh"].copy_(d_bias)


_last_views: list = []  # [(key, views)]: the views of the flat vector used last


def _views(net, weights: torch.Tensor) -> dict[str, torch.Tensor]:
    """Named views of ``weights``, reused while the same vector comes back (every step, for a
    method's own weights).  Keyed by layout and address: the cached views keep that storage
    alive, so no other tensor can take its address meanwhile."""
    key = (net.spec, weights.data_ptr())
    cached = _last_views[0] if _last_views else None  # one read: evaluation threads may replace it meanwhile
    if cached is None or cached[0] != key:
        cached = (key, net.unflatten(weights.detach()))
        _last_views[:] = [cached]
    return cached[1]


def single_lstm_logits(net, x: torch.Tensor, weights: torch.Tensor, task: int,
                       gain: torch.Tensor | None) -> torch.Tensor:
    """Logits (1, N, C) of ``task``'s head at the last step; ``x`` already holds the task identity."""
    return SingleLSTMHead.apply(weights, x, net, task, gain)
