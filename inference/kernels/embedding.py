"""Token + position embedding on the GPU, mirroring `reference.layers.embedding`:

    x[t, c] = wte[ids[t], c] + wpe[start + t, c]

One thread per output element; a block covers BLOCK columns of one row, so
neighbouring threads read neighbouring columns of the same embedding rows.
"""

import numpy as np
from numba import cuda

from .common import BLOCK, ceil_div


@cuda.jit
def embedding_kernel(wte, wpe, ids, start, out):  # [V, C], [n_ctx, C], [T] int32 -> out [T, C]
    c, t = cuda.grid(2)
    if t < ids.shape[0] and c < wte.shape[1]:
        out[t, c] = wte[ids[t], c] + wpe[start + t, c]


def embedding(wte, wpe, ids, start, out=None):  # device [V, C], [n_ctx, C], [T] -> [T, C]
    T, C = ids.shape[0], wte.shape[1]
    out = cuda.device_array((T, C), dtype=np.float32) if out is None else out
    embedding_kernel[(ceil_div(C, BLOCK), T), (BLOCK, 1)](wte, wpe, ids, np.int64(start), out)
    return out
