"""Causal self-attention on the GPU, mirroring `reference.layers.attention`
with the causal mask and the heads folded in:

    out[t, h] = softmax_j( q[t, h] . k[j, h] / sqrt(D) ) @ v[:, h],  j <= position of t

q holds T new queries (positions S - T .. S - 1), k and v the S cached keys
and values (`store_kv` first appends the new ones to the KV cache), heads
side by side: head h is columns h*D .. h*D + D - 1. Positions after the
query are never visited, which is what the reference's -inf mask means.

v1  one thread per (query, head), two passes over the keys: the max score,
    then the sum of exp and the weighted sum of values. Simple, but with
    T * H threads a decode step (T = 1) leaves most of the GPU idle.
v2  the same thread layout with the online softmax (see softmax.py): one
    pass, keeping a running max, a running sum and the output accumulator,
    rescaled whenever the max grows. This is the core of flash attention:
    the row of scores is never stored.
v3  one block per (query, head), the decode kernel: the block's threads
    split the keys (j = thread, thread + blockDim, ...), keep the scores in
    shared memory, agree on max and sum with block reductions, then split
    the D output columns. A decode step (T = 1) gets H blocks of parallel
    work instead of H threads. Scores live in shared memory, so S <= 1024.
"""

import math

import numpy as np
from numba import cuda, float32

from .common import BLOCK, NEG_INF, block_max, block_sum, ceil_div

MAX_HEAD_DIM = 128  # per-thread accumulators are local arrays of this size
MAX_CONTEXT = 1024  # v3 keeps a row of scores in shared memory


@cuda.jit
def store_kv_kernel(qkv, cache_k, cache_v, start):  # qkv [T, 3C] -> cache_k, cache_v [n_ctx, C] at rows start..
    c, t = cuda.grid(2)
    C = cache_k.shape[1]
    if t < qkv.shape[0] and c < C:
        cache_k[start + t, c] = qkv[t, C + c]
        cache_v[start + t, c] = qkv[t, 2 * C + c]


@cuda.jit(device=True)
def score(q, k, t, j, col, D, inv_sqrt_d):  # q[t, col:col+D] . k[j, col:col+D] / sqrt(D)
    s = float32(0)
    for d in range(D):
        s += q[t, col + d] * k[j, col + d]
    return s * inv_sqrt_d


@cuda.jit
def attention_v1_kernel(q, k, v, n_head, inv_sqrt_d, out):  # q [T, *], k, v [S, C] -> out [T, C]
    t, h = cuda.grid(2)
    T, S = q.shape[0], k.shape[0]
    if t >= T or h >= n_head:
        return
    D = k.shape[1] // n_head
    col, last = h * D, S - T + t  # this head's columns; the query's position
    m = NEG_INF
    for j in range(last + 1):
        m = max(m, score(q, k, t, j, col, D, inv_sqrt_d))
    acc = cuda.local.array(MAX_HEAD_DIM, float32)
    for d in range(D):
        acc[d] = float32(0)
    total = float32(0)
    for j in range(last + 1):
        p = math.exp(score(q, k, t, j, col, D, inv_sqrt_d) - m)
        total += p
        for d in range(D):
            acc[d] += p * v[j, col + d]
    for d in range(D):
        out[t, col + d] = acc[d] / total


@cuda.jit
def attention_v2_kernel(q, k, v, n_head, inv_sqrt_d, out):  # online softmax, one pass
    t, h = cuda.grid(2)
    T, S = q.shape[0], k.shape[0]
    if t >= T or h >= n_head:
        return
    D = k.shape[1] // n_head
    col, last = h * D, S - T + t
    acc = cuda.local.array(MAX_HEAD_DIM, float32)
    for d in range(D):
        acc[d] = float32(0)
    m, total = NEG_INF, float32(0)
    for j in range(last + 1):
        s = score(q, k, t, j, col, D, inv_sqrt_d)
        if s > m:  # a new max: everything so far was weighted by exp(. - m_old)
            correction = math.exp(m - s) if m != NEG_INF else float32(0)
            total *= correction
            for d in range(D):
                acc[d] *= correction
            m = s
        p = math.exp(s - m)
        total += p
        for d in range(D):
            acc[d] += p * v[j, col + d]
    for d in range(D):
        out[t, col + d] = acc[d] / total


@cuda.jit(device=True, inline="always")
def exponentiate_row(scores, last, m):  # shared scores[0..last], each thread's max so far -> their sum
    """The middle of a softmax over a row of scores kept in shared memory: the
    threads agree on the row's max, replace each score by exp(score - max),
    and agree on the sum. Its last barrier also makes every scores[j] visible
    to every thread, so the weighted sum of the values can follow at once."""
    tid, step = cuda.threadIdx.x, cuda.blockDim.x
    m = block_max(m)
    total = float32(0)
    for j in range(tid, last + 1, step):
        p = math.exp(scores[j] - m)
        scores[j] = p
        total += p
    return block_sum(total)


@cuda.jit
def attention_v3_kernel(q, k, v, n_head, inv_sqrt_d, out):  # one block per (head, query)
    h, t = cuda.blockIdx.x, cuda.blockIdx.y
    tid, step = cuda.threadIdx.x, cuda.blockDim.x
    T, S = q.shape[0], k.shape[0]
    D = k.shape[1] // n_head
    col, last = h * D, S - T + t
    scores = cuda.shared.array(MAX_CONTEXT, float32)
    m = NEG_INF
    for j in range(tid, last + 1, step):
        s = score(q, k, t, j, col, D, inv_sqrt_d)
        scores[j] = s
        m = max(m, s)
    total = exponentiate_row(scores, last, m)
    for d in range(tid, D, step):
        acc = float32(0)
        for j in range(last + 1):
            acc += scores[j] * v[j, col + d]
        out[t, col + d] = acc / total


VERSIONS = (1, 2, 3)


def store_kv(qkv, cache_k, cache_v, start):
    T, C = qkv.shape[0], cache_k.shape[1]
    store_kv_kernel[(ceil_div(C, BLOCK), T), (BLOCK, 1)](qkv, cache_k, cache_v, np.int64(start))


def attention(q, k, v, n_head, out=None, version=None, block_size=BLOCK):  # [T, C], [S, C], [S, C] -> [T, C]
    T, S, C = q.shape[0], k.shape[0], k.shape[1]
    if C // n_head > MAX_HEAD_DIM:
        raise ValueError(f"head size {C // n_head} is over the kernels' limit of {MAX_HEAD_DIM}")
    out = cuda.device_array((T, C), dtype="float32") if out is None else out
    inv_sqrt_d = np.float32(1.0 / math.sqrt(C // n_head))
    if version is None:
        version = 3 if T == 1 else 2
    if version in (1, 2):
        kernel = attention_v1_kernel if version == 1 else attention_v2_kernel
        threads = min(block_size, 32)
        kernel[(ceil_div(T, threads), n_head), (threads, 1)](q, k, v, n_head, inv_sqrt_d, out)
    elif version == 3:
        if S > MAX_CONTEXT:
            raise ValueError(f"attention v3 keeps scores in shared memory: S = {S} is over {MAX_CONTEXT}")
        attention_v3_kernel[(n_head, T), block_size](q, k, v, n_head, inv_sqrt_d, out)
    else:
        raise ValueError(f"attention has versions {VERSIONS}, not {version}")
    return out
