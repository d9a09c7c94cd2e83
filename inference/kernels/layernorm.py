"""Layer norm on the GPU, mirroring `reference.layers.layer_norm(x, g, b, eps)`.

    y[r, i] = g[i] * (x[r, i] - mean_r) / sqrt(var_r + eps) + b[i]

Versions (all checked against the reference by tests/kernels/test_layernorm.py):

v1  one thread per row: the reference with the row loop replaced by the
    thread index. Each thread walks its row alone, and neighbouring threads
    read addresses a whole row apart, so loads are not coalesced: slow, but
    obviously right.
v2  one block per row: the block's threads stride over the row together
    (thread t reads elements t, t + blockDim, ...: neighbours read
    neighbours, coalesced), then a shared-memory tree (block_sum) adds the
    partial sums: once for the mean, once for the variance (two passes, like
    the reference, so no cancellation from E[x^2] - E[x]^2).
v3  one warp per row, several rows per block: the same two passes, summed
    with warp shuffles (warp_sum): no shared memory, no block barrier. The
    default: at GPT-2 widths (768) a warp per row keeps every lane busy.
"""

import math

import numpy as np
from numba import cuda, float32

from .common import BLOCK, WARP, block_sum, ceil_div, warp_sum


@cuda.jit
def layer_norm_v1_kernel(x, g, b, eps, out):  # x [N, C], g [C], b [C], eps float32 -> out [N, C]
    row = cuda.grid(1)
    if row >= x.shape[0]:
        return
    C = x.shape[1]
    total = float32(0)
    for i in range(C):
        total += x[row, i]
    mean = total / float32(C)
    total = float32(0)
    for i in range(C):
        d = x[row, i] - mean
        total += d * d
    rstd = float32(1) / math.sqrt(total / float32(C) + eps)
    for i in range(C):
        out[row, i] = (x[row, i] - mean) * rstd * g[i] + b[i]


@cuda.jit
def layer_norm_v2_kernel(x, g, b, eps, out):  # one block per row
    row, t, step = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
    C = x.shape[1]
    partial = float32(0)
    for i in range(t, C, step):
        partial += x[row, i]
    mean = block_sum(partial) / float32(C)
    partial = float32(0)
    for i in range(t, C, step):
        d = x[row, i] - mean
        partial += d * d
    rstd = float32(1) / math.sqrt(block_sum(partial) / float32(C) + eps)
    for i in range(t, C, step):
        out[row, i] = (x[row, i] - mean) * rstd * g[i] + b[i]


@cuda.jit
def layer_norm_v3_kernel(x, g, b, eps, out):  # one warp per row
    warps_per_block = cuda.blockDim.x // WARP
    row = cuda.blockIdx.x * warps_per_block + cuda.threadIdx.x // WARP
    lane = cuda.threadIdx.x % WARP
    # Rows past the end still join the reductions (a shuffle needs all 32
    # lanes), they just read and write nothing.
    C = x.shape[1] if row < x.shape[0] else 0
    partial = float32(0)
    for i in range(lane, C, WARP):
        partial += x[row, i]
    mean = warp_sum(partial) / float32(max(C, 1))
    partial = float32(0)
    for i in range(lane, C, WARP):
        d = x[row, i] - mean
        partial += d * d
    rstd = float32(1) / math.sqrt(warp_sum(partial) / float32(max(C, 1)) + eps)
    for i in range(lane, C, WARP):
        out[row, i] = (x[row, i] - mean) * rstd * g[i] + b[i]


VERSIONS = (1, 2, 3)


def layer_norm(x, g, b, eps, out=None, version=3, block_size=BLOCK, stream=0):  # device [N, C] -> [N, C]
    N = x.shape[0]
    out = cuda.device_array_like(x) if out is None else out
    eps = np.float32(eps)  # a Python float argument would make the kernel compute in float64
    if version == 1:
        layer_norm_v1_kernel[ceil_div(N, block_size), block_size, stream](x, g, b, eps, out)
    elif version == 2:
        layer_norm_v2_kernel[N, block_size, stream](x, g, b, eps, out)
    elif version == 3:
        rows_per_block = block_size // WARP
        layer_norm_v3_kernel[ceil_div(N, rows_per_block), block_size, stream](x, g, b, eps, out)
    else:
        raise ValueError(f"layer_norm has versions {VERSIONS}, not {version}")
    return out
