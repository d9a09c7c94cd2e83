"""Compile-only checks, no GPU needed (`tox -e ptx` installs the CUDA toolkit
from pip): every kernel compiles for sm_90 (Hopper) with NVVM, its PTX has no
float64 instruction, and assembled to machine code with nvJitLink it fits the
blocks its launcher asks for (registers and shared memory), without spilling
registers. The simulator cannot check any of this: it never compiles."""

import re

import pytest
from numba import config

from inference.kernels import catalog

pytestmark = [
    pytest.mark.compile_only,
    pytest.mark.skipif(bool(config.ENABLE_CUDASIM), reason="the simulator compiles nothing: run `tox -e ptx`"),
]

HOPPER = (9, 0)
KERNELS = catalog.kernels()
_ptx = {}


def ptx_of(name):
    if name not in _ptx:
        _ptx[name] = catalog.compile_ptx(KERNELS[name], HOPPER)
    return _ptx[name]


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_compiles_for_sm90_without_float64(name):
    ptx = ptx_of(name)
    assert ".target sm_90" in ptx
    f64 = [line.strip() for line in ptx.splitlines() if re.search(r"\.f64\b", line)]
    assert not f64, f"{name}: float64 in the PTX, e.g. {f64[:3]}"


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_fits_the_largest_block_its_launcher_uses(name):
    entry = KERNELS[name]
    used = catalog.assemble(ptx_of(name), HOPPER)
    assert catalog.fits(used, entry.max_threads), (
        f"{name}: {used} cannot launch {entry.max_threads} threads per block on sm_90")
    assert used.spill_stores == used.spill_loads == 0, f"{name} spills registers to local memory: {used}"
