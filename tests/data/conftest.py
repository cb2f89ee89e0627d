"""One intra-op thread for these tests: they are dominated by small batched LAPACK calls (SVD of
36 x 144 matrices), which MKL's threaded path runs 10-50x slower when the machine is
oversubscribed (the shared 2-core CI box); restored afterwards."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
