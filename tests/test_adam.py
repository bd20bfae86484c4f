"""Our Adam computes exactly what torch.optim.Adam computes."""
from __future__ import annotations

import pytest
import torch

from cl_rnn import adam
from cl_rnn.adam import Adam


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_steps_equal_torch_adam(fused, dtype, monkeypatch):
    if not fused:
        monkeypatch.setattr(adam, "_fused_ok", lambda params: False)
    torch.manual_seed(0)
    ours = [torch.randn(30, dtype=dtype, requires_grad=True), torch.randn(4, 5, dtype=dtype, requires_grad=True)]
    theirs = [p.detach().clone().requires_grad_() for p in ours]
    mine = Adam(ours, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)
    reference = torch.optim.Adam(theirs, lr=0.01, betas=(0.8, 0.99), weight_decay=0.1)
    for _ in range(4):
        for p, q in zip(ours, theirs):
            g = torch.randn_like(p)
            p.grad, q.grad = g.clone(), g.clone()
        mine.step()
        reference.step()
    for p, q in zip(ours, theirs):
        torch.testing.assert_close(p, q)
        torch.testing.assert_close(mine.state[p]["exp_avg_sq"], reference.state[q]["exp_avg_sq"])
    assert float(mine.state[ours[0]]["step"]) == 4


def test_parameters_without_gradient_are_left_alone():
    p, q = torch.ones(3, requires_grad=True), torch.ones(3, requires_grad=True)
    optimizer = Adam([p, q], lr=0.1)
    p.grad = torch.ones(3)
    optimizer.step()
    assert (q == 1).all() and (p < 1).all() and q not in optimizer.state
