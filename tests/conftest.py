import importlib.util, os
from pathlib import Path
os.environ.setdefault('MPLBACKEND', 'Agg')
import pytest, torch

# pytest -n 2 runs two workers on a 2-core machine: one torch thread each avoids oversubscription,
# which otherwise slows convolutions down several-fold.
if os.environ.get('PYTEST_XDIST_WORKER'): torch.set_num_threads(1)

def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: slower test (still runs in CI; deselect with -m "not slow")')


@pytest.fixture
def experiment():
    "Load a script of experiments/ as a module (they are scripts, not a package): `experiment('ablation_study')`."
    def load(name):
        spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1]/'experiments'/f'{name}.py')
        mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
        return mod
    return load
