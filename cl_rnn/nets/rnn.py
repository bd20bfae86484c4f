"""The study's recurrent network, functional: weights are passed in as one flat vector.

``RecurrentNet(spec).forward(x, weights, task)`` takes the time-major input ``x`` (T, N, I) and the
flat weight vector (the main net's own parameters, a hypernetwork's output, masked weights, ...)
and returns logits of the task's head.  Layers: ``--srnn_pre_fc_layers`` fully-connected layers,
``--rnn_arch`` recurrent layers (LSTM, or Elman with ``--use_vanilla_rnn``), ``--srnn_post_fc_layers``,
then a linear output layer (multi-head: one ``num_classes_per_task`` slice per task).

Two implementations of the same function:

* ``forward``: the fast one (LSTM layers as one fused autograd node each, see ``lstm.py``).
* ``forward_reference``: plain torch ops, usable under ``torch.func`` transforms (the EWC Fisher's
  per-sample gradients) and with truncated backpropagation (``tbptt``); the tests hold the two equal.

``unit_gains`` (one (H,) tensor per recurrent layer or None) scales each unit's cell state before
its nonlinearity, ``h = o * act(gain * c)`` (masks); for Elman layers ``h = act(gain * pre)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from cl_rnn.config import Config
from cl_rnn.nets.lstm import lstm_sequence
from cl_rnn.nets.single_lstm import single_lstm_logits
from cl_rnn.rules import int_list

INPUT_SIZE = 128
REPLAY_EXTRA_OUTPUTS = 200  # the study's --use_replay adds these outputs (unused by coreset replay)
ACT_FUNCTIONS = {"tanh": torch.tanh, "relu": torch.relu, "linear": lambda x: x}


@dataclass(frozen=True)
class NetSpec:
    input_size: int = INPUT_SIZE
    num_tasks: int = 10
    classes_per_task: int = 10
    pre_fc: tuple[int, ...] = ()
    rnn: tuple[int, ...] = (32,)
    post_fc: tuple[int, ...] = ()
    multi_head: bool = True
    lstm: bool = True
    act: str = "tanh"
    task_identity: bool = False
    extra_outputs: int = 0

    @classmethod
    def from_config(cls, config: Config, input_size: int = INPUT_SIZE) -> "NetSpec":
        return cls(input_size=input_size, num_tasks=config.num_tasks,
                   classes_per_task=config.num_classes_per_task,
                   pre_fc=tuple(int_list(config.srnn_pre_fc_layers, "srnn_pre_fc_layers")),
                   rnn=tuple(int_list(config.rnn_arch, "rnn_arch")),
                   post_fc=tuple(int_list(config.srnn_post_fc_layers, "srnn_post_fc_layers")),
                   multi_head=config.multi_head, lstm=not config.use_vanilla_rnn, act=config.net_act,
                   task_identity=config.input_task_identity,
                   extra_outputs=REPLAY_EXTRA_OUTPUTS if config.use_replay else 0)

    @property
    def num_outputs(self) -> int:
        heads = self.num_tasks if self.multi_head else 1
        return heads * self.classes_per_task + self.extra_outputs

    @property
    def net_input_size(self) -> int:
        return self.input_size + (self.num_tasks if self.task_identity else 0)


def param_shapes(spec: NetSpec) -> list[tuple[str, tuple[int, ...]]]:
    """Names and shapes of the flat weight vector's pieces, in order."""
    shapes: list[tuple[str, tuple[int, ...]]] = []
    size = spec.net_input_size
    for k, width in enumerate(spec.pre_fc):
        shapes += [(f"pre{k}.weight", (width, size)), (f"pre{k}.bias", (width,))]
        size = width
    for k, hidden in enumerate(spec.rnn):
        gates = 4 * hidden if spec.lstm else hidden
        shapes += [(f"rnn{k}.w_ih", (gates, size)), (f"rnn{k}.w_hh", (gates, hidden)),
                   (f"rnn{k}.b_ih", (gates,)), (f"rnn{k}.b_hh", (gates,))]
        if not spec.lstm:
            shapes += [(f"rnn{k}.w_ho", (hidden, hidden)), (f"rnn{k}.b_ho", (hidden,))]
        size = hidden
    for k, width in enumerate(spec.post_fc):
        shapes += [(f"post{k}.weight", (width, size)), (f"post{k}.bias", (width,))]
        size = width
    shapes += [("out.weight", (spec.num_outputs, size)), ("out.bias", (spec.num_outputs,))]
    return shapes


class RecurrentNet:
    """Shapes, initialisation and the forward pass of one ``NetSpec``; holds no weights."""

    def __init__(self, spec: NetSpec):
        self.spec = spec
        self.shapes = param_shapes(spec)
        self.sizes = [math.prod(shape) for _, shape in self.shapes]
        self.num_params = sum(self.sizes)
        self.index = {name: k for k, (name, _) in enumerate(self.shapes)}

    # --- weights ----------------------------------------------------------------------------
    def unflatten(self, weights: torch.Tensor) -> dict[str, torch.Tensor]:
        """Views of the flat vector by name (one autograd node: ``split``)."""
        self._check_size(weights)
        pieces = weights.split(self.sizes)
        return {name: piece.view(shape) for (name, shape), piece in zip(self.shapes, pieces)}

    def _check_size(self, weights: torch.Tensor) -> None:
        if weights.shape != (self.num_params,):
            raise ValueError(f"expected a flat weight vector of {self.num_params} values, got {tuple(weights.shape)}")

    def offsets(self, name: str) -> tuple[int, int]:
        """Start and end of a named piece in the flat vector."""
        k = self.index[name]
        start = sum(self.sizes[:k])
        return start, start + self.sizes[k]

    def init_weights(self, orthogonal_hh: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
        """A fresh flat vector: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for every weight and bias."""
        flat = torch.empty(self.num_params)
        pieces = self.unflatten(flat)
        for name, piece in pieces.items():
            layer, kind = name.split(".")
            fan_in = piece.shape[1] if piece.dim() == 2 else pieces[f"{layer}.{_weight_of(kind)}"].shape[1]
            bound = 1.0 / math.sqrt(fan_in)
            piece.uniform_(-bound, bound, generator=generator)
        if orthogonal_hh:
            for k, hidden in enumerate(self.spec.rnn):
                for block in pieces[f"rnn{k}.w_hh"].split(hidden, 0):
                    torch.nn.init.orthogonal_(block, generator=generator)
        return flat

    def hh_blocks(self, weights: torch.Tensor) -> list[torch.Tensor]:
        """Every gate block (H, H) of every hidden-to-hidden matrix (orthogonal regulariser)."""
        pieces = self.unflatten(weights)
        return [block for k, hidden in enumerate(self.spec.rnn)
                for block in pieces[f"rnn{k}.w_hh"].split(hidden, 0)]

    def hh_spans(self) -> list[tuple[int, int, int]]:
        """(start, end, hidden) of each recurrent layer's hidden-to-hidden weights in the flat vector."""
        return [(*self.offsets(f"rnn{k}.w_hh"), hidden) for k, hidden in enumerate(self.spec.rnn)]

    def head_rows(self, task: int) -> slice:
        """Output rows of a task's head."""
        size = self.spec.classes_per_task
        return slice(task * size, (task + 1) * size) if self.spec.multi_head else slice(0, size)

    # --- forward ------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, weights: torch.Tensor, task: int | torch.Tensor,
                last_only: bool = True, unit_gains: list[torch.Tensor | None] | None = None) -> torch.Tensor:
        """Logits (S, N, classes_per_task) of the task's head; S = 1 if ``last_only`` else T.

        ``task`` is one task index, or a (N,) tensor of per-sample tasks (multitask batches).
        """
        return self._run(x, weights, task, last_only, unit_gains, fused=True, tbptt=-1)

    def forward_reference(self, x: torch.Tensor, weights: torch.Tensor, task: int | torch.Tensor,
                          last_only: bool = True, unit_gains: list[torch.Tensor | None] | None = None,
                          tbptt: int = -1) -> torch.Tensor:
        """Same as ``forward`` in plain torch ops; ``tbptt`` k > 0 backpropagates only the last k steps."""
        return self._run(x, weights, task, last_only, unit_gains, fused=False, tbptt=tbptt)

    def reference_from_input(self, x: torch.Tensor, weights: torch.Tensor, task: int, last_only: bool = True,
                             unit_gains: list[torch.Tensor | None] | None = None) -> torch.Tensor:
        """``forward_reference`` of an input that already carries the task identity (``with_task_identity``)."""
        return self._layers(x, weights, task, last_only, unit_gains, fused=False, tbptt=-1)

    def with_task_identity(self, x: torch.Tensor, task: int | torch.Tensor) -> torch.Tensor:
        """The network's input: ``x`` with the one-hot task appended to every step (--input_task_identity)."""
        if not self.spec.task_identity:
            return x
        return torch.cat([x, _one_hot(task, self.spec.num_tasks, x)], dim=2)

    @property
    def is_single_lstm(self) -> bool:
        """One LSTM layer straight between input and output (the study's networks)."""
        spec = self.spec
        return spec.lstm and len(spec.rnn) == 1 and not spec.pre_fc and not spec.post_fc

    def _run(self, x, weights, task, last_only, unit_gains, fused, tbptt):
        return self._layers(self.with_task_identity(x, task), weights, task, last_only, unit_gains, fused, tbptt)

    def _layers(self, x, weights, task, last_only, unit_gains, fused, tbptt):
        spec = self.spec
        if fused and last_only and isinstance(task, int) and self.is_single_lstm:
            self._check_size(weights)
            return single_lstm_logits(self, x, weights, task, unit_gains[0] if unit_gains is not None else None)
        p = self.unflatten(weights)
        act = ACT_FUNCTIONS[spec.act]
        for k in range(len(spec.pre_fc)):
            x = act(torch.nn.functional.linear(x, p[f"pre{k}.weight"], p[f"pre{k}.bias"]))
        for k in range(len(spec.rnn)):
            gain = unit_gains[k] if unit_gains is not None else None
            x = self._recurrent_layer(k, x, p, gain, fused, tbptt)
        if last_only:
            x = x[-1:]
        for k in range(len(spec.post_fc)):
            x = act(torch.nn.functional.linear(x, p[f"post{k}.weight"], p[f"post{k}.bias"]))
        return self._head(x, p["out.weight"], p["out.bias"], task)

    def _recurrent_layer(self, k, x, p, gain, fused, tbptt):
        w_ih, w_hh, b_ih, b_hh = (p[f"rnn{k}.{n}"] for n in ("w_ih", "w_hh", "b_ih", "b_hh"))
        if not self.spec.lstm:
            return _elman(x, w_ih, w_hh, b_ih + b_hh, p[f"rnn{k}.w_ho"], p[f"rnn{k}.b_ho"], gain,
                          ACT_FUNCTIONS[self.spec.act], tbptt)
        if fused:
            return lstm_sequence(x, w_ih, w_hh, b_ih, gain, self.spec.act, b_hh=b_hh)
        return _lstm_reference(x, w_ih, w_hh, b_ih + b_hh, gain, ACT_FUNCTIONS[self.spec.act], tbptt)

    def _head(self, h, weight, bias, task):
        size = self.spec.classes_per_task
        if isinstance(task, int) or not self.spec.multi_head:
            rows = self.head_rows(task if isinstance(task, int) else 0)
            return torch.nn.functional.linear(h, weight[rows], bias[rows])
        heads = self.spec.num_tasks * size
        logits = torch.nn.functional.linear(h, weight[:heads], bias[:heads])  # (S, N, tasks * size)
        steps, batch = logits.shape[:2]
        per_task = logits.view(steps, batch, self.spec.num_tasks, size)
        index = task.view(1, batch, 1, 1).expand(steps, batch, 1, size)
        return per_task.gather(2, index).squeeze(2)


def _weight_of(kind: str) -> str:
    return {"bias": "weight", "b_ih": "w_ih", "b_hh": "w_hh", "b_ho": "w_ho"}.get(kind, kind)


def _one_hot(task: int | torch.Tensor, num_tasks: int, x: torch.Tensor) -> torch.Tensor:
    steps, batch = x.shape[:2]
    code = x.new_zeros(batch, num_tasks)
    if isinstance(task, int):
        code[:, task] = 1
    else:
        code.scatter_(1, task.view(batch, 1), 1.0)
    return code.unsqueeze(0).expand(steps, batch, num_tasks)


def _lstm_reference(x, w_ih, w_hh, bias, gain, act, tbptt):
    steps, batch, _ = x.shape
    hidden = w_hh.shape[1]
    inputs = torch.nn.functional.linear(x, w_ih, bias)
    h = x.new_zeros(batch, hidden)
    c = x.new_zeros(batch, hidden)
    outputs = []
    for t in range(steps):
        if 0 < tbptt and t == steps - tbptt:
            h, c = h.detach(), c.detach()
        a = inputs[t] + h @ w_hh.t()
        o, i, f = torch.sigmoid(a[:, :3 * hidden]).split(hidden, 1)
        g = act(a[:, 3 * hidden:])
        c = f * c + i * g
        h = o * act(c if gain is None else gain * c)
        outputs.append(h)
    return torch.stack(outputs)


def _elman(x, w_ih, w_hh, bias, w_ho, b_ho, gain, act, tbptt):
    steps, batch, _ = x.shape
    inputs = torch.nn.functional.linear(x, w_ih, bias)
    h = x.new_zeros(batch, w_hh.shape[1])
    outputs = []
    for t in range(steps):
        if 0 < tbptt and t == steps - tbptt:
            h = h.detach()
        pre = inputs[t] + h @ w_hh.t()
        h = act(pre if gain is None else gain * pre)
        outputs.append(h)
    return act(torch.nn.functional.linear(torch.stack(outputs), w_ho, b_ho))
