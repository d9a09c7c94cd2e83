"""Softmax over the last axis on the GPU, mirroring `reference.layers.softmax(x)`:

    y[r, i] = exp(x[r, i] - max_r) / sum_j exp(x[r, j] - max_r)

v1  one thread per row, three passes over the row: max, sum, write.
v2  one block per row: threads stride over the row (coalesced) and agree on
    the max and the sum with shared-memory trees (block_max, block_sum).
v3  one warp per row with the online softmax (Milakov & Gimelshein, 2018):
    a single pass keeps a running max m and a running sum s, and when a
    larger value arrives rescales the sum: s = s * exp(m_old - m_new) + ...
    The lanes then merge their (m, s) with shuffles. Two passes over the
    row instead of three; the same trick lets flash attention (see
    attention.py) never store a whole row of scores.
-inf inputs (masked positions) become exact zeros, as in the reference.
"""

import math

from numba import cuda, float32

from .common import BLOCK, NEG_INF, WARP, block_max, block_sum, ceil_div, warp_max, warp_sum


@cuda.jit
def softmax_v1_kernel(x, out):  # x, out [N, L]
    row = cuda.grid(1)
    if row >= x.shape[0]:
        return
    L = x.shape[1]
    m = NEG_INF
    for i in range(L):
        m = max(m, x[row, i])
    s = float32(0)
    for i in range(L):
        s += math.exp(x[row, i] - m)
    for i in range(L):
        out[row, i] = math.exp(x[row, i] - m) / s


@cuda.jit
def softmax_v2_kernel(x, out):  # one block per row
    row, t, step = cuda.blockIdx.x, cuda.threadIdx.x, cuda.blockDim.x
    L = x.shape[1]
    m = NEG_INF
    for i in range(t, L, step):
        m = max(m, x[row, i])
    m = block_max(m)
    s = float32(0)
    for i in range(t, L, step):
        s += math.exp(x[row, i] - m)
    s = block_sum(s)
    for i in range(t, L, step):
        out[row, i] = math.exp(x[row, i] - m) / s


@cuda.jit(device=True)
def rescale(s, m_old, m_new):  # s was summed relative to m_old; express it relative to m_new
    if m_old == NEG_INF:
        return float32(0)  # nothing summed yet (and exp(-inf - -inf) would be NaN)
    return s * math.exp(m_old - m_new)


@cuda.jit
def softmax_v3_kernel(x, out):  # one warp per row, online softmax
    warps_per_block = cuda.blockDim.x // WARP
    row = cuda.blockIdx.x * warps_per_block + cuda.threadIdx.x // WARP
    lane = cuda.threadIdx.x % WARP
    L = x.shape[1] if row < x.shape[0] else 0  # rows past the end join the shuffles only
    m, s = NEG_INF, float32(0)
    for i in range(lane, L, WARP):
        v = x[row, i]
        if v > m:
            s = rescale(s, m, v)
            m = v
        if v != NEG_INF:
            s += math.exp(v - m)
    row_max = warp_max(m)
    row_sum = warp_sum(rescale(s, m, row_max))
    for i in range(lane, L, WARP):
        out[row, i] = math.exp(x[row, i] - row_max) / row_sum


VERSIONS = (1, 2, 3)


def softmax(x, out=None, version=3, block_size=BLOCK):  # device [N, L] -> [N, L]
    N = x.shape[0]
    out = cuda.device_array_like(x) if out is None else out
    if version == 1:
        softmax_v1_kernel[ceil_div(N, block_size), block_size](x, out)
    elif version == 2:
        softmax_v2_kernel[N, block_size](x, out)
    elif version == 3:
        softmax_v3_kernel[ceil_div(N, block_size // WARP), block_size](x, out)
    else:
        raise ValueError(f"softmax has versions {VERSIONS}, not {version}")
    return out
