import importlib.util
from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models run fastest on one thread; two threads on a loaded 2-core machine thrash."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def compare():
    """benchmarks/compare.py as a module (benchmarks are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location("compare_bench", Path(__file__).resolve().parents[1] / "benchmarks" / "compare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
