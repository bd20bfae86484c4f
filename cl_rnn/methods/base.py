"""The method protocol: the hooks the autograd learner calls, and their composition.

A continual-learning method is a small object.  The autograd learner (``cl_rnn.learners.autograd``,
one member), for every task ``t``::

    method.before_task(t, data); regularisers' before_task
    for each iteration:
        weights = method.weights(t)                        # flat main-net weights for task t
        loss = task_loss(net.forward(x, weights, t, unit_gains=method.unit_gains(t)))
        penalty = method.penalty(t)                        # None, or a scalar added to the loss
        backward of loss + penalty; the regularisers add their gradients to the weights' (``add_grad``)
        clip the total gradient norm; regularisers' before_step
        optimizer.step(); regularisers' after_step
    method.after_task(t, data); regularisers' after_task  # before the task's evaluation

``parameters()`` is what one fresh Adam per task trains.  State lives on the method object;
hooks never reach into the loss.  A method that supplies the main net's weights is a *source*
(fine-tuning's own weights, masked weights, a hypernetwork's output); *extras* watch a source.  An
extra is either a ``Regulariser`` (EWC, SI, the orthogonal penalty): written once over the
weights of P members as [P, W] with closed-form gradients, it serves both learners (the kernel
learner's P members, the autograd learner's one); or a ``Method`` with an autograd ``penalty``
(replay's distillation, a plugin's quick prototype), which trains with the autograd learner, alone.
``Composite`` combines one source with such Method extras.  The kernel learner
(``cl_rnn.learners.kernel``) needs no Method: it trains the flat weights that fine-tuning's and
masking's sources would hold, with the masks of the member's seed.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from cl_rnn.adam import Adam
from cl_rnn.nets.rnn import RecurrentNet


@dataclass
class Batch:
    """Time-major float inputs (T, N, I), local labels (N,), and the task (one index or (N,) per sample)."""
    x: torch.Tensor
    y: torch.Tensor
    task: int | torch.Tensor


class Method:
    """Fine-tuning's hooks: nothing added.  Subclasses override what they need."""

    name = "finetune"

    def parameters(self) -> list[torch.Tensor]:
        """Tensors the optimizer trains (leaves with ``requires_grad``)."""
        return []

    def weights(self, task: int) -> torch.Tensor:
        """The flat main-net weight vector to use for ``task``."""
        raise NotImplementedError(f"{self.name} does not supply main-net weights")

    def unit_gains(self, task: int) -> list[torch.Tensor | None] | None:
        """Per recurrent layer, a constant (H,) gain on the cell state, or None (no modulation)."""
        return None

    def penalty(self, task: int) -> torch.Tensor | None:
        """Regulariser added to the task loss (a scalar with gradient), or None."""
        return None

    def before_task(self, task: int, data) -> None:
        """Before the first iteration of ``task``; ``data`` is the task's ``Task``."""

    def after_task(self, task: int, data) -> None:
        """After the last iteration of ``task`` (and the best-model restore), before its evaluation."""

    def compression_ratio(self, net: RecurrentNet) -> float:
        """Trained parameters over main-net parameters (the study's figure for hypernetworks)."""
        return sum(p.numel() for p in self.parameters()) / net.num_params

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint keeps between tasks: every public attribute holding tensors or arrays.

        Methods whose state sits in other objects (a hypernetwork) add it; scalars set from flags
        and references to other methods or the net are not state.
        """
        return tensor_state(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``'s values; tensors that already exist are copied in place, so
        tensors shared between methods (EWC and SI watch the source's weights) stay shared."""
        load_tensor_state(self, state)


class Composite(Method):
    """One weight source plus extras (regularisers); every hook reaches all of them, source first."""

    def __init__(self, source: Method, extras: list[Method]):
        self.source = source
        self.extras = list(extras)
        self.members = [source, *self.extras]
        self.name = "+".join(m.name for m in self.members if m.name != "finetune") or "finetune"

    def parameters(self) -> list[torch.Tensor]:
        seen: dict[int, torch.Tensor] = {}
        for member in self.members:
            for p in member.parameters():
                seen.setdefault(id(p), p)
        return list(seen.values())

    def weights(self, task: int) -> torch.Tensor:
        return self.source.weights(task)

    def unit_gains(self, task: int) -> list[torch.Tensor | None] | None:
        return self.source.unit_gains(task)

    def penalty(self, task: int) -> torch.Tensor | None:
        total = None
        for member in self.members:
            term = member.penalty(task)
            if term is not None:
                total = term if total is None else total + term
        return total

    def before_task(self, task: int, data) -> None:
        for member in self.members:
            member.before_task(task, data)

    def after_task(self, task: int, data) -> None:
        for member in self.members:
            member.after_task(task, data)

    def compression_ratio(self, net: RecurrentNet) -> float:
        return self.source.compression_ratio(net)

    def state_dict(self) -> dict[str, Any]:
        return {f"{k}:{m.name}": m.state_dict() for k, m in enumerate(self.members)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, member in enumerate(self.members):
            member.load_state_dict(state[f"{k}:{member.name}"])


class Regulariser:
    """An extra written once over P members' weights: state as [P, W] tensors, strengths as [P, 1] columns.

    It adds its closed-form gradient to the gradient buffer [P, W] and returns the per-member penalty
    values for the divergence check.  A population has P members; a single run is P = 1 (its weights
    viewed as [1, W], ``cl_rnn.methods.regularisers``).  ``keep(index)`` drops stopped members.
    """

    #: set True to get the task loss's gradient before the penalties are added (SI, task loss only)
    wants_task_grads = False

    def add_grad(self, theta: torch.Tensor, grad: torch.Tensor, task: int) -> torch.Tensor | None:
        """Add the penalty's gradient to ``grad``; per-member penalty values [P], or None (no penalty)."""
        return None

    def before_task(self, theta: torch.Tensor, task: int) -> None:
        pass

    def after_task_loss(self, grad: torch.Tensor) -> None:
        pass

    def before_step(self, theta: torch.Tensor, grad: torch.Tensor, adams: list[tuple[Adam, torch.Tensor]]) -> None:
        """After clipping, before the update; ``adams``: each member's optimizer and the parameter it steps."""

    def after_step(self, theta: torch.Tensor, grad: torch.Tensor) -> None:
        pass

    def after_task(self, theta: torch.Tensor, task: int, last: bool, fisher: Callable[[], torch.Tensor]) -> None:
        pass

    def keep(self, index: torch.Tensor) -> None:
        for name, value in vars(self).items():
            if isinstance(value, torch.Tensor) and value.dim() == 2:
                setattr(self, name, value[index])


def add_penalty_grads(regularisers: list[Regulariser], theta: torch.Tensor, grad: torch.Tensor, task: int,
                      losses: torch.Tensor | None) -> torch.Tensor | None:
    """``grad`` [P, W] holds the loss gradient: hand it to the regularisers that want it alone, then let
    each add its penalty's gradient in turn.  Returns ``losses`` plus each penalty's values [P], in that
    order (``losses`` None: the penalties' sum, or None when there are none)."""
    for reg in regularisers:
        if reg.wants_task_grads:
            reg.after_task_loss(grad)
    for reg in regularisers:
        values = reg.add_grad(theta, grad, task)
        if values is not None:
            losses = values if losses is None else losses + values
    return losses


class Members:
    """What an extra's ``batched`` builder reads: the members' flags, the net and the weights [P, W]."""

    def __init__(self, configs: list, net: RecurrentNet, theta: torch.Tensor | None, like: torch.Tensor):
        """``theta`` None: the weights are not one trained vector (a hypernetwork's output); ``like``: a
        tensor of the weights' dtype and device."""
        self.configs, self.net, self._theta, self._like = configs, net, theta, like
        self.config = configs[0]  # flags every member shares

    @property
    def theta(self) -> torch.Tensor:
        if self._theta is None:
            raise ValueError("this regulariser needs a weight source whose only parameter is the main net's "
                             "flat weight vector")
        return self._theta

    def column(self, flag: str, times: float = 1.0) -> torch.Tensor:
        """A flag per member as a [P, 1] column; ``times`` scales it in double first (as Python scalars
        are in a single run's arithmetic), then it is rounded to the weights' dtype."""
        values = [times * getattr(config, flag) for config in self.configs]
        return torch.tensor(values, dtype=self._like.dtype, device=self._like.device).view(-1, 1)


def _is_state(value: Any) -> bool:
    if isinstance(value, (torch.Tensor, np.ndarray)):
        return True
    return isinstance(value, (list, tuple)) and len(value) > 0 and all(
        v is None or _is_state(v) for v in value)


def tensor_state(holder: Any) -> dict[str, Any]:
    """``holder``'s public attributes that hold tensors or arrays (also in nested lists), or None."""
    return {name: value for name, value in vars(holder).items()
            if not name.startswith("_") and (value is None or _is_state(value))}


def load_tensor_state(holder: Any, state: dict[str, Any]) -> None:
    for name, saved in state.items():
        setattr(holder, name, _restored(getattr(holder, name, None), saved))


@torch.no_grad()
def _restored(current: Any, saved: Any) -> Any:
    """``saved``, written into ``current`` where it has the same structure (identity kept)."""
    if isinstance(current, torch.Tensor) and isinstance(saved, torch.Tensor) and \
            current.shape == saved.shape and current.dtype == saved.dtype:
        return current.copy_(saved)
    if isinstance(current, list) and isinstance(saved, list) and len(current) == len(saved):
        current[:] = [_restored(c, s) for c, s in zip(current, saved)]
        return current
    if isinstance(current, tuple) and isinstance(saved, tuple) and len(current) == len(saved):
        return tuple(_restored(c, s) for c, s in zip(current, saved))
    if isinstance(saved, torch.Tensor) and isinstance(current, torch.Tensor):
        return saved.to(current.device)
    return saved
