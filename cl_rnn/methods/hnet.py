"""Chunked hypernetwork (``--hnet_all``, von Oswald et al. 2020): task embeddings -> all main-net weights.

The weight source is ``cl_rnn.nets.hnet.ChunkedHypernet``: every main-net weight, heads included,
is generated from the task's embedding.  The optimizer trains the MLP, the chunk embeddings and
the embeddings of the current and earlier tasks, as the study's does: an earlier task's embedding
moves under the regulariser (and the weight decay) only; later tasks' embeddings get no gradient.

The hypernetwork writes the main-net weights in the study's order (``study_order``), not in cl-rnn's
flat layout: the concatenated chunks are read through a fixed permutation.  The order matters: with
small chunk embeddings (the study's line: ``--std_normal_emb=0.1``) the chunks start out nearly
alike, so the weights that share a position within a chunk start alike and move together.

Output regulariser, for task t > 0::

    beta * (1 / t) * sum_{j < t} || W_j* - h(e_j) ||^2

W_j* is what the hypernetwork generated for task j just before task t began (no dropout, no
gradient).  The sum runs over the shared weights and head j's rows only: other tasks' heads are
free.  ``--hnet_reg_batch_size`` k > 0 regularises a random k of the earlier tasks per step
(divided by k instead of t).  Hypernetwork dropout (``--nh_hnet_dropout_rate``) is on while
gradients are being recorded (training steps) and off under ``torch.no_grad`` (evaluation, targets).

Speed: in a training step, ``weights(t)`` runs one MLP pass over the chunks of task t and of the
earlier tasks the regulariser needs; ``penalty(t)`` then applies the last layer to the earlier
tasks' part fused with the regulariser (``_LastLayerDrift``).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from cl_rnn.config import Config
from cl_rnn.methods.base import Method, load_tensor_state, tensor_state
from cl_rnn.methods.registry import MethodSpec
from cl_rnn.nets.hnet import ChunkedHypernet, HnetSpec, affine
from cl_rnn.nets.matmul import matmul_nt
from cl_rnn.nets.rnn import RecurrentNet


class Hypernetwork(Method):
    name = "hnet"

    def __init__(self, net: RecurrentNet, hnet: ChunkedHypernet, beta: float, reg_batch_size: int = -1):
        if hnet.spec.num_weights != net.num_params:
            raise ValueError(f"the hypernetwork writes {hnet.spec.num_weights} weights, the net has {net.num_params}")
        self.net = net
        self.hnet = hnet
        self.beta = beta
        self.reg_batch_size = reg_batch_size
        self.task = 0
        self._order = study_order(net).to(hnet.shared.device)  # hypernetwork output k is main-net weight _order[k]
        self._to_net = torch.argsort(self._order)  # main-net weight i is hypernetwork output _to_net[i]
        self.targets: torch.Tensor | None = None      # (t, W'): W_j* for j < t (uncut chunks, W' >= W)
        self.excluded: torch.Tensor | None = None     # (t, W') bool: where task j's regulariser does not count
        self._neg_targets: torch.Tensor | None = None  # -targets for the fused drift (rebuilt every task)
        self._pending: tuple | None = None            # regularised tasks and their last-layer inputs

    @classmethod
    def from_config(cls, config: Config, net: RecurrentNet, device: torch.device) -> "Hypernetwork":
        hnet = ChunkedHypernet(HnetSpec.from_config(config, net.num_params), device)
        return cls(net, hnet, config.beta, config.hnet_reg_batch_size)

    def parameters(self) -> list[torch.Tensor]:
        return [self.hnet.shared, *self.hnet.task_embs[:self.task + 1]]

    def generate(self, tasks: list[int], dropout: bool = False) -> torch.Tensor:
        """(len(tasks), W): the tasks' main-net weights, in the net's flat layout."""
        return self.hnet.generate_chunks(tasks, dropout).index_select(1, self._to_net)

    def weights(self, task: int) -> torch.Tensor:
        if not torch.is_grad_enabled() or not self._regularising():
            return self.generate([task], dropout=torch.is_grad_enabled())[0]
        tasks = self._regularised_tasks()
        features, weight, bias = self.hnet.hidden([task, *tasks], dropout=True)
        chunks = self.hnet.spec.num_chunks
        self._pending = (tasks, features[chunks:], weight, bias)
        return affine(features[:chunks], weight, bias).view(-1).index_select(0, self._to_net)

    def _regularising(self) -> bool:
        return self.targets is not None and self.beta != 0

    def _regularised_tasks(self) -> list[int]:
        earlier = len(self.targets)
        if 0 < self.reg_batch_size < earlier:
            return sorted(np.random.choice(earlier, size=self.reg_batch_size, replace=False).tolist())
        return list(range(earlier))

    def before_task(self, task: int, data) -> None:
        self.task = task
        self._pending = None
        if task == 0:
            return
        earlier = list(range(task))
        with torch.no_grad():
            self.targets = self.hnet.generate_chunks(earlier)  # uncut: the padding is excluded
        self._neg_targets = self.targets.neg()
        padded = self.targets.shape[1]
        regions = [regulated_region(self.net, j).to(self._order.device)[self._order] for j in earlier]
        self.excluded = torch.stack([F.pad(region, (0, padded - self.net.num_params)) == 0 for region in regions])

    def penalty(self, task: int) -> torch.Tensor | None:
        if not self._regularising():
            return None
        if self._pending is None:  # no training-mode weights(task) call came first
            tasks = self._regularised_tasks()
            features, weight, bias = self.hnet.hidden(tasks, dropout=True)
        else:
            (tasks, features, weight, bias), self._pending = self._pending, None
        neg_targets, excluded = self._neg_targets, self.excluded
        if len(tasks) < len(neg_targets):
            neg_targets, excluded = neg_targets[tasks], excluded[tasks]
        return _LastLayerDrift.apply(features, weight, bias, neg_targets, excluded, self.beta / len(tasks))

    def compression_ratio(self, net: RecurrentNet) -> float:
        return self.hnet.num_params / net.num_params

    def state_dict(self) -> dict[str, Any]:
        return {**tensor_state(self), "task": self.task, "hnet": tensor_state(self.hnet)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.task = state["task"]
        load_tensor_state(self.hnet, state["hnet"])
        load_tensor_state(self, {k: v for k, v in state.items() if k not in ("task", "hnet")})


class _LastLayerDrift(torch.autograd.Function):
    """``scale * sum over counted entries of (features @ weight + bias - targets)^2``, fused.

    The regularised tasks' generated weights are never materialised apart from the drift itself:
    the bias rides along as an extra input column, so one ``addmm`` writes ``output - target``; the
    excluded entries (other tasks' heads, padding) are zeroed; the backward is two matmuls of the
    drift (oneDNN's, twice as fast as ``mm`` for these skinny shapes), scaled on their small results.
    """

    @staticmethod
    def forward(ctx, features, weight, bias, neg_targets, excluded, scale):
        rows, width = features.shape[0], weight.shape[1]
        f, w = features.detach(), weight.detach()
        if bias is not None:
            f = torch.cat([f, f.new_ones(rows, 1)], 1)
            w = torch.cat([w, bias.detach().unsqueeze(0)], 0)
        drift = torch.addmm(neg_targets.view(rows, width), f, w).masked_fill_(excluded.view(rows, width), 0.0)
        ctx.save_for_backward(f, w, drift)
        ctx.scale, ctx.has_bias = scale, bias is not None
        flat = drift.view(-1)
        return scale * torch.dot(flat, flat)

    @staticmethod
    def backward(ctx, grad_output):
        f, w, drift = ctx.saved_tensors
        factor = 2 * ctx.scale * grad_output
        d_f = matmul_nt(drift, w).mul_(factor)            # drift @ w.T
        d_w = matmul_nt(f.t(), drift.t()).mul_(factor)    # f.T @ drift
        if not ctx.has_bias:
            return d_f, d_w, None, None, None, None
        return d_f[:, :-1], d_w[:-1], d_w[-1], None, None, None


def study_order(net: RecurrentNet) -> torch.Tensor:
    """(W,): the main-net weights in the order the study's network lists them, as flat indices.

    The study lists a recurrent layer's pieces as w_ih, b_ih, w_hh, b_hh (cl-rnn: w_ih, w_hh, b_ih,
    b_hh) and stacks an LSTM's gate rows as i, f, g, o (cl-rnn: o, i, f, g); every other piece has
    the same place in both.
    """
    spec = net.spec
    pieces = net.unflatten(torch.arange(net.num_params))
    order, listed = [], set()
    for name, _ in net.shapes:
        layer = name.split(".")[0]
        if not layer.startswith("rnn"):
            order.append(pieces[name].reshape(-1))
        elif layer not in listed:
            listed.add(layer)
            hidden = spec.rnn[int(layer[3:])]
            for kind in ("w_ih", "b_ih", "w_hh", "b_hh", "w_ho", "b_ho"):
                piece = pieces.get(f"{layer}.{kind}")
                if piece is None:
                    continue
                if spec.lstm:  # rows o, i, f, g -> i, f, g, o
                    o, i, f, g = piece.split(hidden, 0)
                    piece = torch.cat([i, f, g, o])
                order.append(piece.reshape(-1))
    return torch.cat(order)


def regulated_region(net: RecurrentNet, task: int) -> torch.Tensor:
    """(W,) 0/1: every main-net weight except the output rows of other tasks' heads."""
    region = torch.ones(net.num_params)
    spec = net.spec
    if not spec.multi_head:
        return region
    heads = spec.num_tasks * spec.classes_per_task
    own = net.head_rows(task)
    for name in ("out.weight", "out.bias"):
        start, end = net.offsets(name)
        rows = region[start:end].view(spec.num_outputs, -1)
        rows[:heads] = 0
        rows[own] = 1
    return region


def _implemented(config: Config) -> str | None:
    if config.use_new_hnet and config.nh_hnet_type == "chunked_hmlp":
        return None
    return "--hnet_all: cl-rnn implements --use_new_hnet --nh_hnet_type=chunked_hmlp only"


SPEC = MethodSpec("hnet", flag="hnet_all", role="source", excludes=("ewc", "si", "replay"),
                  implies={"use_new_hnet": True, "nh_hnet_type": "chunked_hmlp"}, check=_implemented,
                  not_batched="--hnet_all (hypernetwork) is not batched",
                  build=lambda config, net, device: Hypernetwork.from_config(config, net, device),
                  summary="a chunked hypernetwork generates all main-net weights from task embeddings")
