"""The study's network (one LSTM layer, then the task's head) for P members at once, by hand.

``loss_and_grad`` computes every member's task loss and writes its gradient into one [P, W]
buffer, with no autograd graph.  What is batched over the population: the output layer, the
loss and its gradient, the head's weight gradients (one ``bmm`` each).  The recurrent layer runs
member by member through the single run's own code (``lstm_forward``, ``lstm_gate_grads``,
``lstm_weight_grads``: the oneDNN input projection and the C recurrence kernel), because that is the fastest way this
machine has: measured on 2 shared cores at P = 32, a batched ``bmm`` input projection took
16 ms against 12 ms for the member loop, the weight gradient 15 ms against 6 ms, and the
recurrence in batched torch ops ([P, B, 4H] elementwise ops per step) several times the C
kernel's time.  The LSTM layer is arithmetic-bound at this size; the population saves what is
not arithmetic: autograd, the optimizer, clipping and the regularisers run once for all members.
It also makes a member's numbers those of its single run (same kernels, same order of sums).
"""
from __future__ import annotations

import torch

from cl_rnn.evaluation import needs_all_steps, step_weights
from cl_rnn.nets.lstm import LSTMTrace, lstm_forward, lstm_gate_grads, lstm_weight_grads
from cl_rnn.nets.rnn import RecurrentNet


def supports(net: RecurrentNet) -> bool:
    """Whether ``net`` has the shape this module computes (one LSTM layer straight to the head)."""
    return net.is_single_lstm


class PopulationLSTM:
    """Loss and gradient of P members that share ``net``'s shape; weights are rows of [P, W]."""

    def __init__(self, net: RecurrentNet, ts_weighting: str, steps: int):
        if not supports(net):
            raise ValueError("population training needs one LSTM layer without fc layers")
        self.net = net
        self.hidden = net.spec.rnn[0]
        self.all_steps = needs_all_steps(ts_weighting)
        self.weights = step_weights(ts_weighting, steps)
        self.pieces = [(name, net.offsets(name), shape) for name, shape in net.shapes]
        self._cache: dict[int, tuple[torch.Tensor, list]] = {}

    def views(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """Named views of one member's flat vector (a row of the [P, W] buffer)."""
        return {name: flat[a:b].view(shape) for name, (a, b), shape in self.pieces}

    def member_views(self, buffer: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """``views`` of every row; kept while ``buffer`` is (its values change in place, not its storage)."""
        cached = self._cache.get(id(buffer))
        if cached is None or cached[0] is not buffer:
            if len(self._cache) > 8:
                self._cache.clear()
            cached = self._cache[id(buffer)] = (buffer, [self.views(row) for row in buffer])
        return cached[1]

    def head(self, theta: torch.Tensor, task: int) -> tuple[torch.Tensor, torch.Tensor, slice]:
        """The task's output weights [P, C, H] and biases [P, 1, C], and their rows."""
        start, _ = self.net.offsets("out.weight")
        bias_start, _ = self.net.offsets("out.bias")
        rows = self.net.head_rows(task)
        outputs = self.net.spec.num_outputs
        weight = theta[:, start:start + outputs * self.hidden].view(-1, outputs, self.hidden)[:, rows]
        bias = theta[:, bias_start:bias_start + outputs][:, rows].unsqueeze(1)
        return weight, bias, rows

    def loss_and_grad(self, theta: torch.Tensor, xs: list[torch.Tensor], y: torch.Tensor, task: int,
                      gains: list[torch.Tensor | None], grad: torch.Tensor) -> torch.Tensor:
        """Per-member task loss [P]; its gradient is written into ``grad`` [P, W] (overwritten).

        ``xs[p]`` is member p's batch (T, B, I) with the task identity already appended; ``y`` [P, B].
        """
        act = self.net.spec.act
        traces, read = [], []
        weights, grads = self.member_views(theta), self.member_views(grad)
        with torch.no_grad():
            for p, x in enumerate(xs):
                w = weights[p]
                trace = lstm_forward(x, w["rnn0.w_ih"], w["rnn0.w_hh"], w["rnn0.b_ih"], w["rnn0.b_hh"], gains[p], act)
                traces.append(trace)
                read.append(trace.hs if self.all_steps else trace.hs[-1:])
            hs = torch.stack(read)                                   # [P, S, B, H]
            losses, d_hs = self._head_loss_and_grad(theta, hs, y, task, grad)
            for p, (x, trace) in enumerate(zip(xs, traces)):
                self._lstm_grad(x, trace, weights[p], gains[p], d_hs[p], grads[p])
        return losses

    def _head_loss_and_grad(self, theta, hs, y, task, grad):
        """Cross-entropy of the task's head, batched; fills the head's gradient, returns d(loss)/d(h)."""
        members, steps, batch, hidden = hs.shape
        weight, bias, rows = self.head(theta, task)
        flat_h = hs.view(members, steps * batch, hidden)
        logits = torch.baddbmm(bias, flat_h, weight.transpose(1, 2))              # [P, S*B, C]
        log_probs = torch.log_softmax(logits, dim=2).view(members, steps, batch, -1)
        labels = y.view(members, 1, batch, 1).expand(members, steps, batch, 1)
        per_step = -log_probs.gather(3, labels).squeeze(3).mean(2)                # [P, S]
        d_logits = log_probs.exp_()
        d_logits.scatter_add_(3, labels, torch.full_like(labels, -1, dtype=d_logits.dtype))
        scale = self._step_scale(steps, hs) / batch                               # [S]
        d_logits.mul_(scale.view(1, steps, 1, 1))
        losses = per_step @ (scale * batch)
        d_logits = d_logits.view(members, steps * batch, -1)
        grad.zero_()
        head_weight, head_bias, _ = self.head(grad, task)
        head_weight.copy_(torch.bmm(d_logits.transpose(1, 2), flat_h))
        head_bias.copy_(d_logits.sum(1, keepdim=True))
        d_h = torch.bmm(d_logits, weight).view(members, steps, batch, hidden)
        return losses, d_h

    def _step_scale(self, steps: int, like: torch.Tensor) -> torch.Tensor:
        if self.weights is None:
            return like.new_ones(steps)
        return self.weights.to(like)[-steps:] if steps > 1 else like.new_ones(1)

    def _lstm_grad(self, x, trace: LSTMTrace, w, gain, d_read, g) -> None:
        d_hs = torch.zeros_like(trace.hs)
        if self.all_steps:
            d_hs.copy_(d_read)
        else:
            d_hs[-1] = d_read[0]
        d_acts_t = lstm_gate_grads(trace, w["rnn0.w_hh"], gain, self.net.spec.act, d_hs)
        d_w_ih, d_w_hh, d_bias = lstm_weight_grads(d_acts_t, x, trace.hs)
        g["rnn0.w_ih"].copy_(d_w_ih)
        g["rnn0.w_hh"].copy_(d_w_hh)
        g["rnn0.b_ih"].copy_(d_bias)
        g["rnn0.b_hh"].copy_(d_bias)
