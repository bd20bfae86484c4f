"""A whole LSTM layer over a sequence as one autograd node, with a hand-written backward.

Why not ``nn.LSTM`` / ``torch._VF.lstm``: with 32 units and batch 64 every op is tiny, so the cost
of a training step is the number of ops the autograd engine runs, not arithmetic.  Here the input
projection of all steps is one matmul, the recurrence is one call of a small C kernel per
direction (or a handful of in-place torch ops per step without it), and the backward computes
``dW_ih`` and ``dW_hh`` as one matmul each over all steps.

Gate blocks are stored in the order ``o, i, f, g`` (sigmoid on the first three, one slice):
the layout is ours, not torch's (``to_torch_gate_order`` converts for tests).

An optional per-unit ``gain`` scales the cell state before its nonlinearity,
``h = o * act(gain * c)`` (context-modulation masks); gains are constants (no gradient).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from cl_rnn.nets import lstm_kernel, lstm_ops
from cl_rnn.nets.matmul import matmul_nt


def to_torch_gate_order(weight: torch.Tensor) -> torch.Tensor:
    """Rows of a (4H, ...) gate-stacked tensor from our ``o, i, f, g`` to torch's ``i, f, g, o``."""
    o, i, f, g = weight.chunk(4, 0)
    return torch.cat([i, f, g, o], 0)


@dataclass
class LSTMTrace:
    """What a forward pass keeps for the backward: activations o, i, f, g (T, N, 4H), cells, act(gain * c), h."""
    acts: torch.Tensor
    cells: torch.Tensor
    squashed: torch.Tensor
    hs: torch.Tensor
    kernel: object  # the C library used, or None (torch ops)


def lstm_forward(x, w_ih, w_hh, b_ih, b_hh, gain, act, threads: int = 1) -> LSTMTrace:
    """The layer's forward pass without autograd; ``x`` (T, N, I).  ``threads``: the input projection and
    the C kernel's rows split between that many threads (the same numbers)."""
    steps, batch, _ = x.shape
    hidden = w_hh.shape[1]
    cells = x.new_empty(steps, batch, hidden)
    squashed = torch.empty_like(cells)
    hs = torch.empty_like(cells)
    kernel = lstm_kernel.load(x.dtype)
    if lstm_kernel.usable(kernel, x, w_ih, w_hh, b_ih, b_hh, gain):
        acts = matmul_nt(x.reshape(steps * batch, -1), w_ih.contiguous(), threads).view(steps, batch, 4 * hidden)
        lstm_kernel.forward(kernel, acts, w_hh, b_ih, b_hh, gain, act, cells, squashed, hs, threads)
    else:
        kernel = None
        acts = torch.addmm(b_ih + b_hh, x.reshape(steps * batch, -1), w_ih.t()).view(steps, batch, 4 * hidden)
        lstm_ops.forward_ops(acts, w_hh, gain, act, cells, squashed, hs)
    return LSTMTrace(acts, cells, squashed, hs, kernel)


def lstm_gate_grads(trace: LSTMTrace, w_hh, gain, act, d_hs, threads: int = 1) -> torch.Tensor:
    """Gradients of the preactivations, gate-major (4H, T, N), from the gradients of every step's output.

    Gate-major so that the weight gradients are products of row-major operands.  Samples do not
    interact, so [:, :, n] holds sample n's own gradient (per-sample gradients of the weights
    follow as outer products: the EWC Fisher uses this).
    """
    if trace.kernel is not None:
        return lstm_kernel.backward(trace.kernel, trace.acts, trace.cells, trace.squashed, w_hh, gain, act, d_hs,
                                    threads)
    return lstm_ops.backward_ops(trace.acts, trace.cells, trace.squashed, w_hh, gain, act, d_hs).permute(2, 0, 1)


def lstm_weight_grads(d_acts_t: torch.Tensor, x: torch.Tensor, hs: torch.Tensor, threads: int = 1):
    """dW_ih (4H, I), dW_hh (4H, H) and the bias gradient (4H,) from the gate gradients (4H, T, N)."""
    four_h, steps, batch = d_acts_t.shape
    flat_t = d_acts_t.reshape(four_h, steps * batch)
    d_w_ih = matmul_nt(flat_t, x.reshape(steps * batch, -1).t(), threads)
    d_w_hh = matmul_nt(flat_t[:, batch:], hs[:-1].reshape(-1, hs.shape[2]).t(), threads)
    return d_w_ih, d_w_hh, flat_t.sum(1)


class LSTMSequence(torch.autograd.Function):
    """``hs = LSTMSequence.apply(x, w_ih, w_hh, b_ih, b_hh, gain, act)``; x (T, N, I) -> hs (T, N, H).

    ``act`` names the nonlinearity of g and of the cell (tanh, relu or linear: the backward
    needs its derivative from its output).  The recurrence runs in the C kernel when it is
    available (``lstm_kernel.py``), else in torch ops; both give the same numbers.
    """

    @staticmethod
    def forward(ctx, x, w_ih, w_hh, b_ih, b_hh, gain, act):
        trace = lstm_forward(x, w_ih, w_hh, b_ih, b_hh, gain, act)
        ctx.act = act
        ctx.kernel = trace.kernel
        ctx.save_for_backward(x, w_ih, w_hh, trace.acts, trace.cells, trace.squashed, trace.hs, gain)
        return trace.hs

    @staticmethod
    def backward(ctx, d_hs):
        x, w_ih, w_hh, acts, cells, squashed, hs, gain = ctx.saved_tensors
        d_acts_t = lstm_gate_grads(LSTMTrace(acts, cells, squashed, hs, ctx.kernel), w_hh, gain, ctx.act, d_hs)
        d_w_ih, d_w_hh, d_bias = lstm_weight_grads(d_acts_t, x, hs)
        d_x = None
        if ctx.needs_input_grad[0]:
            d_x = d_acts_t.reshape(d_acts_t.shape[0], -1).t().mm(w_ih).view(x.shape)
        return d_x, d_w_ih, d_w_hh, d_bias, d_bias, None, None


def lstm_sequence(x: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor, bias: torch.Tensor,
                  gain: torch.Tensor | None = None, act: str = "tanh",
                  b_hh: torch.Tensor | None = None) -> torch.Tensor:
    """Hidden states of every step, (T, N, H); zero initial state.

    ``bias`` is the input-to-hidden bias, or the sum of both biases when ``b_hh`` is None.
    """
    if b_hh is None:
        b_hh = torch.zeros_like(bias)
    return LSTMSequence.apply(x, w_ih, w_hh, bias, b_hh, gain, act)
