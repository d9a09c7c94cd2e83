"""Kernel tests run on a real GPU, or under Numba's CUDA simulator
(NUMBA_ENABLE_CUDASIM=1). With INFERENCE_REQUIRE_GPU=1 (tox -e gpu) they
refuse to run anywhere but a real GPU instead of passing vacuously."""

import os

import pytest
from numba import config, cuda


def pytest_configure(config):
    if os.environ.get("INFERENCE_REQUIRE_GPU") == "1":
        if config_simulated():
            pytest.exit("tox -e gpu needs a real GPU, but NUMBA_ENABLE_CUDASIM=1 is set", returncode=3)
        if not cuda.is_available():
            pytest.exit("tox -e gpu needs a CUDA GPU and none is usable here "
                        "(numba.cuda.is_available() is False); the simulator tests run in plain `tox`",
                        returncode=3)


def config_simulated():
    return bool(config.ENABLE_CUDASIM)


@pytest.fixture(autouse=True)
def needs_cuda_or_simulator(request):
    if request.node.get_closest_marker("compile_only"):
        return
    if not cuda.is_available():
        pytest.skip("no CUDA GPU here: run with NUMBA_ENABLE_CUDASIM=1 (plain `tox` does) or on a GPU (`tox -e gpu`)")
