"""Which data a run uses: ``--data`` if given, else the embedded surrogate (built on first use)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from cl_rnn.data.store import Task, tasks_from_file
from cl_rnn.data.surrogate import ensure_surrogate


def load_tasks(config: Any) -> list[Task]:
    """The tasks of a run: ``config.data`` (or the embedded surrogate, built on first use)."""
    path = Path(config.data) if config.data else ensure_surrogate()
    return tasks_from_file(path, config.num_tasks, config.num_classes_per_task, config.data_random_seed,
                           config.val_set_size)
