"""Every thread of a block sees the same shared arrays. Always true on a GPU.
Under the simulator it holds only because tests/conftest.py locks the
simulator's creation of shared arrays: without the lock, threads that reach
an allocation together can each get an array of their own, and this test
fails in a few launches out of 30."""

import numpy as np
from numba import cuda, float32

from inference.kernels.common import block_sum, warp_max, warp_sum


@cuda.jit
def reductions_kernel(out):  # out [blockDim]: block_sum(warp_max(t) + warp_sum(t)), seen by thread t
    t = cuda.threadIdx.x
    mine = float32(t)
    out[t] = block_sum(warp_max(mine) + warp_sum(mine))


def test_a_blocks_threads_share_their_shared_arrays():
    threads = 64
    lanes = np.arange(threads, dtype=np.float64).reshape(-1, 32)  # [warps, 32]
    want = 32 * (lanes.max(axis=1) + lanes.sum(axis=1)).sum()
    for launch in range(30):  # each launch is a fresh block: fresh allocations to race for
        out = cuda.to_device(np.full(threads, np.nan, np.float32))
        reductions_kernel[1, threads](out)
        got = out.copy_to_host()
        assert (got == want).all(), f"launch {launch}: {sorted(set(got.tolist()))} != {want}"
