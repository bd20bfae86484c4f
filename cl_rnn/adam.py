"""Adam exactly as ``torch.optim.Adam`` computes it (coupled L2 weight decay), without torch.optim.

Creating a ``torch.optim`` optimizer imports ``torch._dynamo``: 70 MB of memory and a few tenths
of a second before the first step of every run.  This class keeps torch's state layout
(``param_groups``, ``state[p]`` with ``step``, ``exp_avg``, ``exp_avg_sq``), so code that reads
it (SI's hypothetical update) works the same, and steps with torch's fused Adam kernel where it
exists (one call), else with the same update in a few tensor ops.
"""
from __future__ import annotations

import torch


class Adam:
    def __init__(self, params: list[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        self.param_groups = [{"params": list(params), "lr": lr, "betas": betas, "eps": eps,
                              "weight_decay": weight_decay}]
        self.state: dict[torch.Tensor, dict[str, torch.Tensor]] = {}

    @torch.no_grad()
    def step(self) -> None:
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            states = [self._state_of(p) for p in params]
            steps = [s["step"] for s in states]
            torch._foreach_add_(steps, 1)
            if _fused_ok(params):
                beta1, beta2 = group["betas"]
                torch._fused_adam_(params, [p.grad for p in params], [s["exp_avg"] for s in states],
                                   [s["exp_avg_sq"] for s in states], [], steps, lr=group["lr"], beta1=beta1,
                                   beta2=beta2, weight_decay=group["weight_decay"], eps=group["eps"],
                                   amsgrad=False, maximize=False)
            else:
                for p, s in zip(params, states):
                    _plain_step(p, s, group)

    def _state_of(self, param: torch.Tensor) -> dict[str, torch.Tensor]:
        state = self.state.get(param)
        if state is None:
            state = self.state[param] = {"step": torch.zeros((), dtype=torch.float32, device=param.device),
                                         "exp_avg": torch.zeros_like(param), "exp_avg_sq": torch.zeros_like(param)}
        return state


HAS_FUSED_ADAM = hasattr(torch, "_fused_adam_")


def _fused_ok(params: list[torch.Tensor]) -> bool:
    return HAS_FUSED_ADAM and all(
        p.device.type in ("cpu", "cuda") and p.dtype in (torch.float32, torch.float64) and p.is_contiguous()
        for p in params)


def _plain_step(param: torch.Tensor, state: dict[str, torch.Tensor], group: dict) -> None:
    beta1, beta2 = group["betas"]
    step = float(state["step"])
    grad = param.grad if not group["weight_decay"] else param.grad.add(param, alpha=group["weight_decay"])
    state["exp_avg"].lerp_(grad, 1 - beta1)
    state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
    denom = (state["exp_avg_sq"] / (1 - beta2 ** step)).sqrt_().add_(group["eps"])
    param.addcdiv_(state["exp_avg"], denom, value=-group["lr"] / (1 - beta1 ** step))
