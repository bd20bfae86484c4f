"""What a run needs before its first step: its device, its seeds, and its tasks (loaded or given,
checked against the flags) with their fingerprint and where they came from."""
from __future__ import annotations

import random
import warnings

import numpy as np
import torch

from cl_rnn.config import Config
from cl_rnn.rules import ConfigError, check_data


def run_tasks(config: Config, tasks: list | None = None) -> list:
    """The run's tasks (loaded from ``--data`` unless given), checked against the flags."""
    if tasks is None:
        from cl_rnn.data.tasks import load_tasks

        tasks = load_tasks(config)
    if len(tasks) < config.num_tasks:
        raise ConfigError(f"--num_tasks={config.num_tasks}: the data has only {len(tasks)} tasks")
    tasks = tasks[:config.num_tasks]
    check_data(config, [len(task.y_train) for task in tasks])
    return tasks


def data_source(config: Config, given: bool) -> str:
    """How messages name the run's data: ``--data FILE``, the default surrogate's file, or given tasks."""
    if given:
        return "the tasks given to train()"
    if config.data:
        return f"--data {config.data}"
    from cl_rnn.data.surrogate import default_surrogate_path

    return f"the default dataset {default_surrogate_path()}"


def choose_device(config: Config) -> torch.device:
    if config.use_cuda and torch.cuda.is_available():
        return torch.device("cuda")
    if config.use_cuda:
        warnings.warn("--use_cuda: no CUDA device here, running on the CPU", stacklevel=3)
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)
