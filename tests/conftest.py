"""Shared fixtures."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """Tiny matmuls: on a busy 2-core machine OpenMP hand-offs cost ~8 ms each, the math 3 us."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
