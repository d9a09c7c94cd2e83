"""The kernel catalog without a compiler: every kernel is listed, and the
launch arithmetic (registers per block, shared memory, occupancy) and the
reading of the assembler's report are right. tests/kernels/test_ptx.py
feeds them real compiler output."""

import pytest

from inference.kernels import catalog


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
    listed = {entry.kernel.py_func.__name__ for entry in catalog.kernels().values()}
    assert found == listed
