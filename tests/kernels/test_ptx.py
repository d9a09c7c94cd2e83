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


def test_ptxas_report_is_read_as_written():
    # The two lines nvJitLink 13.5 writes per kernel, abridged.
    log = ("ptxas         .     512 bytes stack frame, 8 bytes spill stores, 4 bytes spill loads\n"
           "info    : used 56 registers, used 1 barriers, 0 stack, 13312 bytes smem, 832 bytes cmem[0]\n")
    assert catalog.parse_ptxas_log(log) == catalog.Resources(56, 13312, 512, 8, 4)
    with pytest.raises(ValueError, match="registers"):
        catalog.parse_ptxas_log("nothing useful")


def test_launch_limits():
    # 56 registers: 1792 per warp, 57,344 for 1024 threads (fits); 80 registers: 81,920 (does not).
    assert catalog.fits(catalog.Resources(56, 0, 0, 0, 0), 1024)
    assert not catalog.fits(catalog.Resources(80, 0, 0, 0, 0), 1024)
    assert catalog.fits(catalog.Resources(80, 0, 0, 0, 0), 256)
    assert not catalog.fits(catalog.Resources(32, 49 * 1024, 0, 0, 0), 128)  # static shared memory over 48 KB
    # 128 threads x 32 registers: 16 blocks by threads, 16 by registers -> full occupancy.
    assert catalog.occupancy(catalog.Resources(32, 0, 0, 0, 0), 128) == 1.0
    # 80 registers x 256 threads = 20,480 per block: 3 blocks = 768 of 2048 threads.
    assert catalog.occupancy(catalog.Resources(80, 0, 0, 0, 0), 256) == 768 / 2048


def test_every_kernel_is_listed():
    from inference import kernels as package
    import importlib
    import pkgutil
    found = set()
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"inference.kernels.{info.name}")
        found |= {name for name, obj in vars(module).items() if name.endswith("_kernel") and hasattr(obj, "py_func")}
    listed = {entry.kernel.py_func.__name__ for entry in KERNELS.values()}
    assert found == listed
