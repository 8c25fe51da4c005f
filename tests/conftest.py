"""Shared pytest set-up: import the plugin once so every registry is filled."""
import os

import pytest

os.environ.setdefault('OMP_NUM_THREADS', '2')

import mmconvplug  # noqa: E402,F401


@pytest.fixture(autouse=True)
def _fixed_seed():
    """Every test starts from the same RNG state."""
    import random

    import numpy as np
    import torch
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield
