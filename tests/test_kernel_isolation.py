"""Loading and running the C kernel must not change the process's floating-point mode."""
import numpy as np
import pytest
import torch
from train_helpers import small_config, synthetic_tasks

from cl_rnn.nets import lstm_kernel
from cl_rnn.train import train


def test_denormals_survive_training_with_the_kernel(tmp_path):
    if lstm_kernel.load(torch.float32) is None:
        pytest.skip("no C compiler: the torch fallback runs")
    train(small_config(tmp_path, n_iter=5), tasks=synthetic_tasks())
    assert np.float32(1e-39) * np.float32(1.0) != 0  # a float32 denormal is not flushed
    assert torch.tensor(1e-39, dtype=torch.float32).mul(1.0).item() != 0
