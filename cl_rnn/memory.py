"""glibc's malloc, set for a run's large short-lived tensors: they come from the heap and are reused.

By default glibc serves an allocation above 128 KiB (raised as large blocks are freed) with a fresh
``mmap`` and returns it with ``munmap`` when freed, so a tensor of several MB allocated again and again
(each evaluation's inputs and activations: ~30 MB for a 2,000-clip test set) touches new pages every
time, and page faults cost more than the arithmetic on a VM.  Measured on a 2-core VM: the 100 test-set
evaluations of a 10-task run took 1.8-1.9 s with the default, 1.3-1.45 s with these settings.  PyTorch's
performance tuning guide recommends jemalloc or TCMalloc on CPUs for the same reason: they reuse memory.
"""
from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters (malloc.h)
HEAP_BELOW = 64 << 20  # allocations below this come from the heap
KEEP_FREED = 256 << 20  # freed memory at the heap's top kept for reuse up to this much


def reuse_freed_memory() -> bool:
    """Set glibc's thresholds for this process (idempotent); False where malloc is not glibc's."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, HEAP_BELOW)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP_FREED))
