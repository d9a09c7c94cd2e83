"""What each kernel costs a GPU before it runs: registers per thread, shared
memory and stack per block, register spills, and the occupancy they allow,
from compiling for one architecture with the CUDA toolkit from pip. No GPU
needed.

    pip install -e .[cuda]
    python scripts/kernel_resources.py [--cc 9.0]

Occupancy is for the launcher's default block size: resident threads per
multiprocessor over the 2048 it can hold (limits of sm_90; other
architectures differ, see inference/kernels/catalog.py).
"""

import argparse
import importlib.metadata as metadata

from numba import config


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cc", default="9.0", help="compute capability, e.g. 9.0 (H100/H200) or 8.0 (A100)")
    args = ap.parse_args()
    if config.ENABLE_CUDASIM:
        raise SystemExit("unset NUMBA_ENABLE_CUDASIM: the simulator compiles nothing")
    cc = tuple(int(part) for part in args.cc.split("."))

    from inference.kernels import catalog
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in ("numba-cuda", "nvidia-nvjitlink"))
    print(f"sm_{cc[0]}{cc[1]}; {versions}")
    print()
    print("| kernel | threads/block | registers/thread | shared bytes/block | stack bytes/thread "
          "| spilled bytes | occupancy | largest block allowed |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, entry in catalog.kernels().items():
        used = catalog.assemble(catalog.compile_ptx(entry, cc), cc)
        largest = f"{entry.max_threads} ({'fits' if catalog.fits(used, entry.max_threads) else 'DOES NOT FIT'})"
        print(f"| {name} | {entry.threads} | {used.registers} | {used.shared:,} | {used.stack} "
              f"| {used.spill_stores + used.spill_loads} | {catalog.occupancy(used, entry.threads):.0%} | {largest} |")


if __name__ == "__main__":
    main()
