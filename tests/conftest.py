import os
os.environ.setdefault('MPLBACKEND', 'Agg')
import torch

# pytest -n 2 runs two workers on a 2-core machine: one torch thread each avoids oversubscription,
# which otherwise slows convolutions down several-fold.
if os.environ.get('PYTEST_XDIST_WORKER'): torch.set_num_threads(1)

def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: slower test (still runs in CI; deselect with -m "not slow")')
