"""The study's network (one LSTM layer, then the task's head) for P members at once, by hand.

``loss_and_grad`` computes every member's task loss and writes its gradient into one [P, W]
buffer, with no autograd graph, member by member through the single run's own code and ops
(``lstm_forward``, ``lstm_gate_grads``, ``lstm_weight_grads``: the oneDNN input projection and
the C recurrence kernel; then ``SingleLSTMHead``'s output layer and cross-entropy op for op), so
a member's gradient is bit for bit its single run's.  Why not batched matmuls over [P, ...]:
the layer is arithmetic-bound at this size and the member loop is the fastest this machine has.
Measured on 2 shared cores at P = 32 (one thread): a ``bmm`` input projection 16 ms against
12 ms for the member loop, its weight gradient 15 ms against 6 ms, and a whole forward and
backward in batched torch ops 1.65 ms per member against 0.77 ms through the C kernel.
What a population saves is the rest of a step (autograd, clipping, the regularisers' vector
ops, the training loop itself), which runs once for all members.

On a GPU it is the other way round: there is no C kernel, and one batched op over the member axis
beats P small ones.  ``torch_ops=True`` takes the network's plain-torch forward
(``RecurrentNet.reference_from_input``) and ``torch.func``'s ``vmap`` of ``grad_and_value`` over the
members: every matmul becomes one batched matmul over [P, ...].  Its numbers equal the kernel path's
to float rounding, not bit for bit; a population on ``--use_cuda`` takes it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.func import grad_and_value, vmap

from cl_rnn.evaluation import needs_all_steps, step_weights, task_loss
from cl_rnn.nets.lstm import lstm_forward
from cl_rnn.nets.rnn import RecurrentNet
from cl_rnn.nets.single_lstm import head_backward, lstm_backward_into

MEAN, IGNORE = 1, -100  # nll_loss's reduction code and ignore_index, as F.cross_entropy passes them


def supports(net: RecurrentNet) -> bool:
    """Whether ``net`` has the shape this module computes (one LSTM layer straight to the head)."""
    return net.is_single_lstm


class PopulationLSTM:
    """Loss and gradient of P members that share ``net``'s shape; weights are rows of [P, W]."""

    def __init__(self, net: RecurrentNet, ts_weighting: str, steps: int, torch_ops: bool = False, threads: int = 1):
        """``threads``: the C kernel path's products and recurrence split between that many threads."""
        if not supports(net):
            raise ValueError("population training needs one LSTM layer without fc layers")
        self.net, self.threads = net, threads
        self.torch_ops = torch_ops
        self.last_only = not needs_all_steps(ts_weighting)
        self.all_steps = needs_all_steps(ts_weighting)
        self.weights = step_weights(ts_weighting, steps)
        self._cache: dict[int, tuple[torch.Tensor, list]] = {}
        self._one = torch.ones(())  # the gradient autograd seeds a loss's backward with

    def member_views(self, buffer: torch.Tensor) -> list[dict[str, torch.Tensor]]:
        """Named views of every row (``RecurrentNet.unflatten``); kept while ``buffer`` is (its values
        change in place, not its storage)."""
        cached = self._cache.get(id(buffer))
        if cached is None or cached[0] is not buffer:
            if len(self._cache) > 8:
                self._cache.clear()
            cached = self._cache[id(buffer)] = (buffer, [self.net.unflatten(row) for row in buffer])
        return cached[1]

    def loss_and_grad(self, theta: torch.Tensor, xs: list[torch.Tensor], y: torch.Tensor, task: int,
                      gains: list[torch.Tensor | None], grad: torch.Tensor) -> torch.Tensor:
        """Per-member task loss [P]; its gradient is written into ``grad`` [P, W] (overwritten).

        ``xs[p]`` is member p's batch (T, B, I) with the task identity already appended; ``y`` [P, B].
        """
        if self.torch_ops:
            return self._vmapped(theta, xs, y, task, gains, grad)
        act = self.net.spec.act
        rows = self.net.head_rows(task)
        weights, grads = self.member_views(theta), self.member_views(grad)
        head = self._last_step_head if not self.all_steps else self._all_steps_head
        grad.zero_()
        losses = []
        with torch.no_grad():
            for x, w, g, gain, labels in zip(xs, weights, grads, gains, y):
                trace = lstm_forward(x, w["rnn0.w_ih"], w["rnn0.w_hh"], w["rnn0.b_ih"], w["rnn0.b_hh"], gain, act,
                                     self.threads)
                loss, d_hs = head(trace.hs, w["out.weight"][rows], w["out.bias"][rows], labels,
                                  g["out.weight"][rows], g["out.bias"][rows])
                lstm_backward_into(g, x, trace, w["rnn0.w_hh"], gain, act, d_hs, self.threads)
                losses.append(loss)
        return torch.stack(losses)

    def _vmapped(self, theta, xs, y, task, gains, grad) -> torch.Tensor:
        """The members' losses and gradients as batched torch ops (``vmap`` over the member axis)."""
        net, last_only, weights = self.net, self.last_only, self.weights

        def member_loss(flat, x, labels, gain):
            logits = net.reference_from_input(x, flat, task, last_only, None if gain is None else [gain])
            return task_loss(logits, labels, weights)

        masked = gains[0] is not None
        stacked_gains = torch.stack(gains) if masked else None
        grads, losses = vmap(grad_and_value(member_loss), in_dims=(0, 0, 0, 0 if masked else None))(
            theta, torch.stack(xs), y, stacked_gains)
        grad.copy_(grads)
        return losses.detach()

    def _last_step_head(self, hs, weight, bias, y, d_weight, d_bias):
        """``SingleLSTMHead``'s output layer and cross-entropy, forward and backward, op for op."""
        h = hs[-1]
        log_probs = torch.log_softmax(torch.addmm(bias, h, weight.t()), 1)
        loss, total = torch.ops.aten.nll_loss_forward(log_probs, y, None, MEAN, IGNORE)
        d_log_probs = torch.ops.aten.nll_loss_backward(self._one, log_probs, y, None, MEAN, IGNORE, total)
        d_logits = torch.ops.aten._log_softmax_backward_data(d_log_probs, log_probs, 1, log_probs.dtype)
        return loss, head_backward(d_logits, hs, weight, d_weight, d_bias)

    def _all_steps_head(self, hs, weight, bias, y, d_weight, d_bias):
        """The general forward's head and ``task_loss`` over every step, through autograd as there."""
        with torch.enable_grad():
            h = hs.detach().requires_grad_(True)
            w, b = weight.detach().requires_grad_(True), bias.detach().requires_grad_(True)
            loss = task_loss(F.linear(h, w, b), y, self.weights)
            loss.backward()
        d_weight.copy_(w.grad)
        d_bias.copy_(b.grad)
        return loss.detach(), h.grad
