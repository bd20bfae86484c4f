"""Tiny learnable tasks for the training tests (no dataset file needed)."""
from __future__ import annotations

import numpy as np
import torch

from cl_rnn.config import Config
from cl_rnn.data.store import Task


def synthetic_tasks(num_tasks: int = 2, classes: int = 3, train: int = 60, val: int = 12, test: int = 30,
                    steps: int = 10, features: int = 128, seed: int = 0) -> list[Task]:
    """Classes differ by a prototype that drifts over time; uint8 sample-major like the real data."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, steps)[:, None]

    def draw(prototypes: np.ndarray, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = np.arange(count) % classes
        start, end = prototypes[y, 0][:, None], prototypes[y, 1][:, None]
        # small byte values: raw inputs near 128 would saturate every gate of a fresh LSTM
        x = 4 + 3 * ((1 - ramp) * start + ramp * end) + 1.5 * rng.standard_normal((count, steps, features))
        return torch.from_numpy(np.clip(x, 0, 255).astype(np.uint8)), torch.from_numpy(y.astype(np.int64))

    tasks = []
    for t in range(num_tasks):
        prototypes = rng.standard_normal((classes, 2, features))
        (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = (draw(prototypes, n) for n in (train, val, test))
        tasks.append(Task(index=t, classes=list(range(t * classes, (t + 1) * classes)), x_train=x_tr,
                          y_train=y_tr, x_val=x_va, y_val=y_va, x_test=x_te, y_test=y_te))
    return tasks


def small_config(tmp_path, **changes) -> Config:
    """Two 3-class tasks, a 16-unit LSTM, multi-head, a few iterations; run folder under tmp_path."""
    base = dict(num_tasks=2, num_classes_per_task=3, multi_head=True, rnn_arch="16", batch_size=16, n_iter=60,
                lr=0.01, val_iter=20, out_dir=str(tmp_path / "run"))
    base.update(changes)
    return Config(**base)
