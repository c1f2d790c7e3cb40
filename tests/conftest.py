import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _strict_floating_point():
    """NumPy floating-point errors raise inside every test."""
    with np.errstate(all="raise", under="ignore"):
        yield
