"""Rows of a dataset file's x gathered into one array per row set (a task's training, validation or
test clips), without ever holding the whole of x in memory."""
from __future__ import annotations

import mmap
from pathlib import Path

import h5py
import numpy as np

READ_ROWS = 8192  # rows of x read at a time by the block reader


def gather_mapped(path: Path, offset: int, shape: tuple[int, ...], row_sets: list[np.ndarray]) -> list[np.ndarray]:
    """x stored as one plain block of bytes at ``offset`` (as ``write_dataset`` writes it): rows gathered
    from a memory map of the file, reading the page cache in place (0.16-0.68 s for the 130 MB file,
    against 0.75-1.7 s reading blocks and scattering them).  The mapped pages are let go after each set:
    they count in the process's resident memory (+100 MB at the peak if kept)."""
    arrays = []
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as whole:
        x = np.frombuffer(whole, np.uint8, count=int(np.prod(shape)), offset=offset).reshape(shape)
        for rows in row_sets:
            arrays.append(x[rows])
            whole.madvise(mmap.MADV_DONTNEED)
        del x  # the map closes only once no array points into it
    return arrays


def gather_blocks(x: h5py.Dataset, row_sets: list[np.ndarray]) -> list[np.ndarray]:
    """A chunked or compressed x: read block by block once, each block's rows scattered into their sets."""
    dest_slot = np.full(len(x), -1)
    dest_pos = np.zeros(len(x), dtype=np.int64)
    arrays = []
    for rows in row_sets:
        dest_slot[rows] = len(arrays)
        dest_pos[rows] = np.arange(len(rows))
        arrays.append(np.empty((len(rows), *x.shape[1:]), dtype=np.uint8))
    for start in range(0, len(x), READ_ROWS):
        stop = min(start + READ_ROWS, len(x))
        if not (dest_slot[start:stop] >= 0).any():
            continue
        block, slots, pos = x[start:stop], dest_slot[start:stop], dest_pos[start:stop]
        for slot in np.unique(slots[slots >= 0]):
            mask = slots == slot
            arrays[slot][pos[mask]] = block[mask]
    return arrays
