"""Training batches: an infinite, epoch-reshuffled stream over a task's training set.

Like the study, every epoch draws a fresh permutation from numpy's global RNG (seeded by
``--random_seed``), and a stream restarts for every task.  Every batch is full: when an epoch
runs out, the batch is completed from the next epoch's permutation (constant batch shapes).
Inputs are converted once per task to float32 time-major (T, N, I), so a batch is one
``index_select``.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from cl_rnn.methods.base import Batch


def time_major(x: torch.Tensor, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 (N, T, I) sample-major -> (T, N, I) time-major, raw values (no normalisation).

    The bytes are transposed first, then converted: one strided copy that also converts is about
    3x slower (the test set's conversion is a fifth of an evaluation)."""
    return x.transpose(0, 1).contiguous().to(device=device, dtype=dtype)


class IndexStream:
    """Infinite stream of index batches over ``range(size)``, reshuffled every epoch.

    Permutations come from numpy's global RNG (the study's behaviour), or from ``rng`` when given
    (a population member replays its single run's draws from a private generator).
    """

    def __init__(self, size: int, rng: np.random.RandomState | None = None):
        if size <= 0:
            raise ValueError("cannot draw batches from an empty training set")
        self.size = size
        self.rng = rng
        self.order = np.empty(0, dtype=np.int64)
        self.position = 0

    def take(self, count: int) -> np.ndarray:
        parts = []
        while count > 0:
            if self.position == len(self.order):
                self.order = (np.random if self.rng is None else self.rng).permutation(self.size)
                self.position = 0
            part = self.order[self.position:self.position + count]
            self.position += len(part)
            count -= len(part)
            parts.append(part)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


class TaskStream(Iterator[Batch]):
    """Batches of one task: ``Batch(x (T, B, I) float32, y (B,), task)``.

    ``x`` is time-major (T, N, I), float32 or uint8: bytes take a quarter of the memory (10 MB
    instead of 38 MB per task) for one more small op per batch.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, task: int, batch_size: int,
                 rng: np.random.RandomState | None = None):
        self.x, self.y, self.task = x, y, task
        self.batch_size = batch_size
        self.indices = IndexStream(len(y), rng)

    def __next__(self) -> Batch:
        index = torch.from_numpy(self.indices.take(self.batch_size)).to(self.x.device)
        return Batch(self.x.index_select(1, index).to(torch.float32), self.y.index_select(0, index), self.task)


class MultitaskStream(Iterator[Batch]):
    """The study's multitask batches: each sample's task drawn with ``randint``, then the next
    samples of each task's own stream; ``Batch.task`` is the (B,) tensor of per-sample tasks."""

    def __init__(self, xs: list[torch.Tensor], ys: list[torch.Tensor], batch_size: int,
                 device: torch.device | str = "cpu", rng: np.random.RandomState | None = None):
        self.x = torch.cat(xs)  # uint8 sample-major: converting all tasks to float would not fit the memory budget
        self.y = torch.cat(ys)
        self.starts = np.cumsum([0] + [len(y) for y in ys[:-1]])
        self.rng = np.random if rng is None else rng
        self.streams = [IndexStream(len(y), rng) for y in ys]
        self.batch_size = batch_size
        self.device = device

    def __next__(self) -> Batch:
        tasks = self.rng.randint(0, len(self.streams), size=self.batch_size)
        index = np.empty(self.batch_size, dtype=np.int64)
        for task, stream in enumerate(self.streams):
            where = np.flatnonzero(tasks == task)
            if len(where):
                index[where] = self.starts[task] + stream.take(len(where))
        index_t = torch.from_numpy(index)
        return Batch(time_major(self.x.index_select(0, index_t), self.device),
                     self.y.index_select(0, index_t).to(self.device),
                     torch.from_numpy(tasks).to(self.device))
