"""GELU on the GPU, mirroring `reference.layers.gelu(x)` (the tanh form):

    gelu(x) = 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))

Element-wise: every output depends on one input, so the only question is
how threads cover the array.

v1  one thread per element, as many blocks as it takes.
v2  a grid-stride loop: a fixed, modest grid where each thread handles
    elements i, i + gridsize, i + 2 * gridsize, ... Fewer, longer-lived
    threads; the same kernel serves any size; neighbours stay coalesced.
Both work in place (out may be x): each thread reads its element before
writing it.
"""

import math

from numba import cuda, float32

from .common import BLOCK, ceil_div

SCALE = float32(math.sqrt(2.0 / math.pi))
CUBIC = float32(0.044715)
HALF, ONE = float32(0.5), float32(1.0)


@cuda.jit(device=True)
def gelu_scalar(v):
    return HALF * v * (ONE + math.tanh(SCALE * (v + CUBIC * v * v * v)))


@cuda.jit
def gelu_v1_kernel(x, out):  # x, out [n] (flattened)
    i = cuda.grid(1)
    if i < x.shape[0]:
        out[i] = gelu_scalar(x[i])


@cuda.jit
def gelu_v2_kernel(x, out):
    for i in range(cuda.grid(1), x.shape[0], cuda.gridsize(1)):
        out[i] = gelu_scalar(x[i])


VERSIONS = (1, 2)


def gelu(x, out=None, version=2, block_size=BLOCK, grid_size=1024, stream=0):  # device [...] -> [...]
    out = cuda.device_array_like(x) if out is None else out
    flat_x, flat_out = x.reshape(x.size), out.reshape(out.size)
    if version == 1:
        gelu_v1_kernel[ceil_div(x.size, block_size), block_size, stream](flat_x, flat_out)
    elif version == 2:
        gelu_v2_kernel[min(grid_size, ceil_div(x.size, block_size)), block_size, stream](flat_x, flat_out)
    else:
        raise ValueError(f"gelu has versions {VERSIONS}, not {version}")
    return out
