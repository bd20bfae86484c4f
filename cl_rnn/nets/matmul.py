"""``x @ w.T`` for float32 on the CPU through oneDNN when torch has it.

torch's CPU ``mm`` goes to MKL, which on AMD processors runs its AVX2 code; oneDNN's linear
kernel (``torch.ops.mkldnn._linear_pointwise``, the one torch.compile uses) runs AVX-512 and is
about twice as fast for the LSTM's input projection (640 x 128 by 128 x 128), and 1.6x for its
weight gradient (transposed operands).  Same products, float32 accumulation (the order of the
sums may differ in the last bits); any other case, or a torch without that op, uses ``mm``.

``threads`` > 1 lets the product use that many of torch's threads: both libraries split a product
of these shapes by blocks of its output, each element summed as on one thread (tests/test_population.py
and tests/test_train.py check that a gradient and a run come out the same).  Only the products: torch
splits a large reduction (a norm, a penalty's sum) between threads, and that changes its last bits.
"""
from __future__ import annotations

import torch

_checked: list[bool] = []


def onednn_available() -> bool:
    if not _checked:
        try:
            a, w = torch.ones(2, 3), torch.ones(4, 3)
            ok = bool(torch.equal(torch.ops.mkldnn._linear_pointwise(a, w, None, "none", [], ""), a.mm(w.t())))
        except (AttributeError, RuntimeError):
            ok = False
        _checked.append(ok)
    return _checked[0]


def matmul_nt(x: torch.Tensor, w: torch.Tensor, threads: int = 1) -> torch.Tensor:
    """``x @ w.T`` for 2-d ``x`` (M, K) and ``w`` (N, K), either may be a transposed view; no autograd."""
    if threads == 1:
        return _product(x, w)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _product(x, w)
    finally:
        torch.set_num_threads(before)


def _product(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    if (x.dtype == torch.float32 and x.device.type == "cpu" and w.dtype == torch.float32
            and 1 in x.stride() and 1 in w.stride() and not torch.is_grad_enabled() and onednn_available()):
        return torch.ops.mkldnn._linear_pointwise(x, w, None, "none", [], "")
    return x.mm(w.t())
