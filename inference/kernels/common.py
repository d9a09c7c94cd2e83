"""What every kernel shares: the simulator switch, block and warp reductions.

Reductions are how a group of threads agrees on one number (a row's sum or
max). Two ways, both used in the kernels:

* block_sum / block_max / block_argmax: every thread writes its value to
  shared memory, then a tree halves the active threads each step
  (512 + 512, 256 + 256, ...), with __syncthreads() between steps. Works for
  any power-of-two block size up to 1024.
* warp_sum / warp_max: the 32 threads of a warp swap registers directly with
  shuffles (shfl_xor: lane i reads lane i ^ offset), no shared memory and no
  block-wide barrier (warp_sum_shuffle, warp_max_shuffle). Numba's CUDA
  simulator has no shuffles, so under the simulator these two are the
  shared-memory stand-ins warp_sum_shared / warp_max_shared, with the same
  meaning (every lane gets the warp's total), and the kernels that use them
  run unchanged. The shuffle versions' own code is run in 32 Python threads
  with an emulated shfl_xor_sync by tests/kernels/test_warp_shuffle.py, and
  on a real GPU inside the kernels by `tox -e gpu`.

The device functions are inlined into each kernel (inline="always"): each
call site then gets its own shared array, and numba-cuda does not have to
link separately compiled functions whose shared arrays can clash by name
(seen as "Linking globals named '_cudapy_smem_3': symbol multiply defined").

Every literal is wrapped in float32(): a bare Python float is a float64 in
Numba, and float32 op float64 is computed in float64 (slow on a GPU, and not
what the reference does).
"""

import math

from numba import config, cuda, float32, int32

SIMULATOR = bool(config.ENABLE_CUDASIM)
WARP = 32
MAX_BLOCK = 1024
NEG_INF = float32(-math.inf)
# Threads per block the launchers use by default. Under the simulator every
# thread is a Python thread and every barrier a rendezvous of all of them,
# so there a block is one warp.
BLOCK = 32 if SIMULATOR else 128
SAMPLE_BLOCK = 32 if SIMULATOR else 512


def ceil_div(a: int, b: int) -> int:
    return (a + b - 1) // b


@cuda.jit(device=True, inline="always")
def block_sum(value):  # one float32 per thread -> the block's total, in every thread
    buf = cuda.shared.array(MAX_BLOCK, float32)
    t = cuda.threadIdx.x
    buf[t] = value
    cuda.syncthreads()
    stride = cuda.blockDim.x // 2
    while stride > 0:
        if t < stride:
            buf[t] += buf[t + stride]
        cuda.syncthreads()
        stride //= 2
    total = buf[0]
    cuda.syncthreads()  # everyone has read buf[0] before the next reduction reuses buf
    return total


@cuda.jit(device=True, inline="always")
def block_max(value):  # one float32 per thread -> the block's maximum, in every thread
    buf = cuda.shared.array(MAX_BLOCK, float32)
    t = cuda.threadIdx.x
    buf[t] = value
    cuda.syncthreads()
    stride = cuda.blockDim.x // 2
    while stride > 0:
        if t < stride:
            buf[t] = max(buf[t], buf[t + stride])
        cuda.syncthreads()
        stride //= 2
    best = buf[0]
    cuda.syncthreads()
    return best


@cuda.jit(device=True, inline="always")
def block_argmax(value, index):  # (value, index) per thread -> index of the largest value, lowest on ties
    vals = cuda.shared.array(MAX_BLOCK, float32)
    idxs = cuda.shared.array(MAX_BLOCK, int32)
    t = cuda.threadIdx.x
    vals[t] = value
    idxs[t] = index
    cuda.syncthreads()
    stride = cuda.blockDim.x // 2
    while stride > 0:
        if t < stride:
            v, i = vals[t + stride], idxs[t + stride]
            if v > vals[t] or (v == vals[t] and i < idxs[t]):
                vals[t] = v
                idxs[t] = i
        cuda.syncthreads()
        stride //= 2
    best = idxs[0]
    cuda.syncthreads()
    return best


@cuda.jit(device=True, inline="always")
def warp_sum_shuffle(value):  # butterfly: after offsets 16, 8, 4, 2, 1 every lane holds the total
    offset = 16
    while offset > 0:
        value += cuda.shfl_xor_sync(0xFFFFFFFF, value, offset)
        offset //= 2
    return value


@cuda.jit(device=True, inline="always")
def warp_max_shuffle(value):
    offset = 16
    while offset > 0:
        value = max(value, cuda.shfl_xor_sync(0xFFFFFFFF, value, offset))
        offset //= 2
    return value


@cuda.jit(device=True, inline="always")
def warp_sum_shared(value):  # simulator stand-in: the warp's lanes add up through shared memory
    buf = cuda.shared.array(MAX_BLOCK, float32)
    t = cuda.threadIdx.x
    buf[t] = value
    cuda.syncthreads()
    first = t - t % WARP
    total = float32(0)
    for lane in range(WARP):
        total += buf[first + lane]
    cuda.syncthreads()
    return total


@cuda.jit(device=True, inline="always")
def warp_max_shared(value):
    buf = cuda.shared.array(MAX_BLOCK, float32)
    t = cuda.threadIdx.x
    buf[t] = value
    cuda.syncthreads()
    first = t - t % WARP
    best = buf[first]
    for lane in range(1, WARP):
        best = max(best, buf[first + lane])
    cuda.syncthreads()
    return best


# The kernels call warp_sum / warp_max; the simulator, which has no shuffles, gets the stand-ins.
warp_sum = warp_sum_shared if SIMULATOR else warp_sum_shuffle
warp_max = warp_max_shared if SIMULATOR else warp_max_shuffle
