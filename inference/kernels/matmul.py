"""Matmul with bias on the GPU, mirroring `reference.layers.linear(x, w, b)`:

    out[r, c] = sum_k x[r, k] * w[k, c] + b[c]  (+ residual[r, c], fused)

The optional residual is the transformer's `x + f(x)` done in the same
kernel, so the sum never makes an extra trip through memory. `out` may be
`residual` itself: each element is read and written by the same thread.

v1  one thread per output element, threads of a block along a row of out,
    so the w[k, c] loads of neighbouring threads are neighbours (coalesced).
    Every x and w element is read from global memory N or M times. For one
    row (a decode step, N = 1) this is a matrix-vector product and already
    streams w at close to memory speed: the backend uses it there.
v2  shared-memory tiling: a 16 x 16 block of threads loads a 16 x 16 tile of
    x and one of w into shared memory, every thread does 16 multiply-adds
    from the tiles, and the block moves to the next tiles along k. Each
    global element is now read N/16 or M/16 times instead of N or M.
v3  register blocking on top of tiling: a 16 x 16 block computes a 64 x 64
    tile of out, each thread a 4 x 4 patch held in registers. Per k step a
    thread loads 4 values of x and 4 of w from shared memory and does 16
    multiply-adds: four times the arithmetic per shared-memory load of v2.

Every version adds an output up the same way: its K products in k order,
from zero, each with one fused multiply-add (cuda.fma: one rounding, not left
to the compiler's choice of contracting a * b + c), then the bias, then the
residual. So an output has the same bits whichever version computes it, and
the backend may pick the version by the number of rows (v1 up to 4) without a
row's logits depending on how many rows its batch had (batch invariance,
tutorial 8).
"""

from numba import cuda, float32

from .common import BLOCK, ceil_div

TILE = 16  # v2: threads per block side and tile width
OUT_TILE = 64  # v3: out tile side (OUT_TILE / TILE = 4 outputs per thread per side)
PER = OUT_TILE // TILE


@cuda.jit
def linear_v1_kernel(x, w, b, residual, out):  # x [N, K], w [K, M], b [M], residual [N, M] or [0, 0] -> out [N, M]
    c, r = cuda.grid(2)
    if r >= x.shape[0] or c >= w.shape[1]:
        return
    acc = float32(0)
    for k in range(x.shape[1]):
        acc = cuda.fma(x[r, k], w[k, c], acc)
    acc += b[c]
    if residual.shape[0] > 0:
        acc += residual[r, c]
    out[r, c] = acc


@cuda.jit
def linear_v2_kernel(x, w, b, residual, out):
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    c = cuda.blockIdx.x * TILE + tx
    r = cuda.blockIdx.y * TILE + ty
    x_tile = cuda.shared.array((TILE, TILE), float32)
    w_tile = cuda.shared.array((TILE, TILE), float32)
    N, K, M = x.shape[0], x.shape[1], w.shape[1]
    acc = float32(0)
    for k0 in range(0, K, TILE):
        # Each thread loads one element of each tile; zeros pad the edges.
        x_tile[ty, tx] = x[r, k0 + tx] if r < N and k0 + tx < K else float32(0)
        w_tile[ty, tx] = w[k0 + ty, c] if k0 + ty < K and c < M else float32(0)
        cuda.syncthreads()
        for k in range(TILE):
            acc = cuda.fma(x_tile[ty, k], w_tile[k, tx], acc)
        cuda.syncthreads()  # before the next iteration overwrites the tiles
    if r < N and c < M:
        acc += b[c]
        if residual.shape[0] > 0:
            acc += residual[r, c]
        out[r, c] = acc


@cuda.jit
def linear_v3_kernel(x, w, b, residual, out):
    tx, ty = cuda.threadIdx.x, cuda.threadIdx.y
    row0 = cuda.blockIdx.y * OUT_TILE
    col0 = cuda.blockIdx.x * OUT_TILE
    x_tile = cuda.shared.array((OUT_TILE, TILE), float32)  # 64 rows of x, 16 k's
    w_tile = cuda.shared.array((TILE, OUT_TILE), float32)  # 16 k's, 64 columns of w
    acc = cuda.local.array((PER, PER), float32)
    for i in range(PER):
        for j in range(PER):
            acc[i, j] = float32(0)
    N, K, M = x.shape[0], x.shape[1], w.shape[1]
    for k0 in range(0, K, TILE):
        for p in range(PER):  # 256 threads load 64 x 16 elements: 4 each, coalesced along k / c
            r = row0 + ty + p * TILE
            x_tile[ty + p * TILE, tx] = x[r, k0 + tx] if r < N and k0 + tx < K else float32(0)
            c = col0 + tx + p * TILE
            w_tile[ty, tx + p * TILE] = w[k0 + ty, c] if k0 + ty < K and c < M else float32(0)
        cuda.syncthreads()
        for k in range(TILE):
            xs = cuda.local.array(PER, float32)
            ws = cuda.local.array(PER, float32)
            for i in range(PER):  # thread (tx, ty) owns rows ty + 16 i and columns tx + 16 j
                xs[i] = x_tile[ty + i * TILE, k]
                ws[i] = w_tile[k, tx + i * TILE]
            for i in range(PER):
                for j in range(PER):
                    acc[i, j] = cuda.fma(xs[i], ws[j], acc[i, j])
        cuda.syncthreads()
    for i in range(PER):
        r = row0 + ty + i * TILE
        for j in range(PER):
            c = col0 + tx + j * TILE
            if r < N and c < M:
                v = acc[i, j] + b[c]
                if residual.shape[0] > 0:
                    v += residual[r, c]
                out[r, c] = v


VERSIONS = (1, 2, 3)
_NO_RESIDUAL = {}


def no_residual():
    """A [0, 0] device array: the kernels' way of saying "no residual"."""
    if "array" not in _NO_RESIDUAL:
        _NO_RESIDUAL["array"] = cuda.device_array((0, 0), dtype="float32")
    return _NO_RESIDUAL["array"]


def linear(x, w, b, out=None, residual=None, version=None, stream=0):  # device [N, K], [K, M], [M] -> [N, M]
    N, M = x.shape[0], w.shape[1]
    out = cuda.device_array((N, M), dtype="float32") if out is None else out
    residual = no_residual() if residual is None else residual
    if version is None:
        version = 1 if N <= 4 else 3  # a few rows: matrix-vector, bound by reading w once
    if version == 1:
        linear_v1_kernel[(ceil_div(M, BLOCK), N), (BLOCK, 1), stream](x, w, b, residual, out)
    elif version == 2:
        linear_v2_kernel[(ceil_div(M, TILE), ceil_div(N, TILE)), (TILE, TILE), stream](x, w, b, residual, out)
    elif version == 3:
        linear_v3_kernel[(ceil_div(M, OUT_TILE), ceil_div(N, OUT_TILE)), (TILE, TILE), stream](x, w, b, residual, out)
    else:
        raise ValueError(f"linear has versions {VERSIONS}, not {version}")
    return out
