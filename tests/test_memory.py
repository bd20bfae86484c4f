"""glibc's malloc keeps a run's large tensors on the heap (``cl_rnn.memory``)."""
from __future__ import annotations

import ctypes

import pytest
import torch

from cl_rnn.memory import reuse_freed_memory


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]


def mapped_bytes() -> int:
    """Bytes that malloc serves from blocks mapped one per allocation (mallinfo2's hblkhd)."""
    mallinfo2 = ctypes.CDLL(None).mallinfo2
    mallinfo2.restype = MallInfo2
    return mallinfo2().hblkhd


def test_a_tensor_of_tens_of_megabytes_comes_from_the_heap():
    try:
        mapped_bytes()
    except AttributeError:
        pytest.skip("malloc here is not glibc's (no mallinfo2)")
    assert reuse_freed_memory()
    before = mapped_bytes()
    tensor = torch.empty(40 << 20, dtype=torch.uint8)
    assert mapped_bytes() == before  # not a mapping of its own: freed, it stays for the next tensor
    del tensor
