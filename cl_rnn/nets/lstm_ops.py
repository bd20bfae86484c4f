"""The LSTM recurrence in plain torch ops: the reference the C kernel is checked against, and the
path taken where there is no kernel (no compiler, ``CL_RNN_NO_KERNEL=1``, layers over 64 units).

Gate blocks ``o, i, f, g`` as in ``lstm.py``; a handful of in-place ops per step.
"""
from __future__ import annotations

import torch


def forward_ops(acts, w_hh, gain, act, cells, squashed, hs):
    """The recurrence in torch ops (no C kernel): fills acts (in place), cells, squashed, hs."""
    steps, batch, hidden = cells.shape
    w_hh_t = w_hh.t()
    cell_act = ACTS[act][0]
    a_steps, c_steps, s_steps, h_steps = acts.unbind(0), cells.unbind(0), squashed.unbind(0), hs.unbind(0)
    for t in range(steps):
        a = a_steps[t]
        if t:
            a.addmm_(h_steps[t - 1], w_hh_t)
        a[:, :3 * hidden].sigmoid_()
        cell_act(a[:, 3 * hidden:], a[:, 3 * hidden:])
        o, i, f, g = a.split(hidden, 1)
        if t:
            torch.mul(f, c_steps[t - 1], out=c_steps[t])
            c_steps[t].addcmul_(i, g)
        else:
            torch.mul(i, g, out=c_steps[t])
        if gain is None:
            cell_act(c_steps[t], s_steps[t])
        else:
            cell_act(torch.mul(c_steps[t], gain, out=s_steps[t]), s_steps[t])
        torch.mul(o, s_steps[t], out=h_steps[t])


def backward_ops(acts, cells, squashed, w_hh, gain, act, d_hs):
    """The recurrence's backward in torch ops: gradients of the preactivations (T, N, 4H)."""
    steps, batch, four_h = acts.shape
    hidden = four_h // 4
    from_h, to_c = _step_factors(acts, cells, squashed, gain, ACTS[act][1])
    d_acts = torch.empty_like(acts)
    d_steps, dh_steps, f_steps = d_acts.unbind(0), d_hs.unbind(0), acts[:, :, 2 * hidden:3 * hidden].unbind(0)
    m_steps = _ifg_factors(acts, cells, ACTS[act][1]).unbind(0)
    p_steps, k_steps = from_h.unbind(0), to_c.unbind(0)
    dh = dh_steps[-1]
    dc = dh * k_steps[-1]
    for t in range(steps - 1, -1, -1):
        if t < steps - 1:
            dh = torch.addmm(dh_steps[t], d_steps[t + 1], w_hh)
            dc = torch.addcmul(dc * f_steps[t + 1], dh, k_steps[t])
        d = d_steps[t]
        torch.mul(dh, p_steps[t], out=d[:, :hidden])
        torch.mul(dc.unsqueeze(1), m_steps[t], out=d[:, hidden:].view(batch, 3, hidden))
    return d_acts


def _step_factors(acts, cells, squashed, gain, act_grad):
    """Per step: dh -> d(o preactivation) factor, and dh -> dc factor."""
    hidden = cells.shape[-1]
    o = acts[:, :, :hidden]
    from_h = torch.addcmul(o, o, o, value=-1).mul_(squashed)       # o (1 - o) act(c)
    to_c = act_grad(squashed).mul_(o)                              # o act'(gain c) gain
    if gain is not None:
        to_c.mul_(gain)
    return from_h, to_c


def _ifg_factors(acts, cells, act_grad):
    """Per step (T, N, 3, H): dc -> d(i, f, g preactivation) factors."""
    steps, batch, four_h = acts.shape
    hidden = four_h // 4
    i, f, g = acts[:, :, hidden:2 * hidden], acts[:, :, 2 * hidden:3 * hidden], acts[:, :, 3 * hidden:]
    out = acts.new_empty(steps, batch, 3, hidden)
    torch.mul(torch.addcmul(i, i, i, value=-1), g, out=out[:, :, 0])           # g i (1 - i)
    torch.mul(torch.addcmul(f[1:], f[1:], f[1:], value=-1), cells[:-1], out=out[1:, :, 1])  # c_prev f (1 - f)
    out[0, :, 1].zero_()
    torch.mul(act_grad(g), i, out=out[:, :, 2])                                 # i act'(g)
    return out


def _tanh_out(x, out):
    return torch.tanh(x, out=out)


def _relu_out(x, out):
    return torch.clamp(x, min=0, out=out)


def _identity_out(x, out):
    return out if out is x else out.copy_(x)


def _tanh_grad(y):
    return torch.addcmul(torch.ones_like(y), y, y, value=-1)


def _relu_grad(y):
    return (y > 0).to(y.dtype)


def _identity_grad(y):
    return torch.ones_like(y)


# name -> (apply into out, derivative expressed through the output)
ACTS = {"tanh": (_tanh_out, _tanh_grad), "relu": (_relu_out, _relu_grad), "linear": (_identity_out, _identity_grad)}
