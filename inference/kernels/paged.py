"""The batched step's kernels: keys and values in a pool of blocks, mirroring
`reference.paged` (store_kv, paged_attention) and `reference.layers.embedding`
at any positions.

The pool is one [slots, C] array per layer; slot s is row s % B of block
s // B. A batch is N rows (every sequence's new tokens, concatenated); for
row r, positions[r] is its position in its sequence and seq[r] the index of
that sequence in block_tables [n_seqs, max_blocks], whose row lists the
sequence's blocks. Position p of sequence i lives in slot
block_tables[i, p // B] * B + p % B.

store_kv           one thread per (row, column): the new key and value of each
                   row go to the slot its position maps to (slot_mapping[r]).
paged_attention    one block per (head, row), as attention v3: the block's
                   threads split the row's visible positions 0..positions[r],
                   find each one's slot through the block table, keep the
                   scores in shared memory, agree on max and sum, then split
                   the head's D output columns. Prefill rows and decode rows
                   are the same work here: one query row over the keys it may
                   see, whatever else is in the batch (so the kernel is batch
                   invariant, as the NumPy step is).
embedding_at       x[r] = wte[ids[r]] + wpe[positions[r]]
gather_rows        out[i] = x[rows[i]]: the rows whose logits are wanted (each
                   sequence's last row, where it samples)
"""

import math

import numpy as np
from numba import cuda, float32

from .attention import MAX_CONTEXT, exponentiate_row
from .common import BLOCK, NEG_INF, ceil_div

# paged_attention needs 72 registers a thread for sm_90 (scripts/kernel_resources.py):
# 1024 threads would ask for more than a multiprocessor's 65,536.
MAX_ATTENTION_THREADS = 512


@cuda.jit
def store_kv_kernel(qkv, pool_k, pool_v, slot_mapping):  # qkv [N, 3C] -> pool_k, pool_v [slots, C]
    c, r = cuda.grid(2)
    C = pool_k.shape[1]
    if r < qkv.shape[0] and c < C:
        pool_k[slot_mapping[r], c] = qkv[r, C + c]
        pool_v[slot_mapping[r], c] = qkv[r, 2 * C + c]


@cuda.jit(device=True, inline="always")
def slot_of(block_tables, i, p, block_size):  # sequence i's position p -> its row of the pool
    return block_tables[i, p // block_size] * block_size + p % block_size


@cuda.jit
def paged_attention_kernel(q, pool_k, pool_v, positions, seq, block_tables, block_size, n_head, inv_sqrt_d,
                           out):  # q [N, *] (the first C columns are queries) -> out [N, C]
    h, r = cuda.blockIdx.x, cuda.blockIdx.y
    tid, step = cuda.threadIdx.x, cuda.blockDim.x
    D = pool_k.shape[1] // n_head
    col, last, i = h * D, positions[r], seq[r]
    scores = cuda.shared.array(MAX_CONTEXT, float32)
    m = NEG_INF
    for j in range(tid, last + 1, step):
        s_j = slot_of(block_tables, i, j, block_size)
        s = float32(0)
        for d in range(D):
            s += q[r, col + d] * pool_k[s_j, col + d]
        s *= inv_sqrt_d
        scores[j] = s
        m = max(m, s)
    total = exponentiate_row(scores, last, m)
    for d in range(tid, D, step):
        acc = float32(0)
        for j in range(last + 1):
            acc += scores[j] * pool_v[slot_of(block_tables, i, j, block_size), col + d]
        out[r, col + d] = acc / total


@cuda.jit
def embedding_at_kernel(wte, wpe, ids, positions, out):  # [V, C], [n_ctx, C], [N] x 2 int32 -> out [N, C]
    c, r = cuda.grid(2)
    if r < ids.shape[0] and c < wte.shape[1]:
        out[r, c] = wte[ids[r], c] + wpe[positions[r], c]


@cuda.jit
def gather_rows_kernel(x, rows, out):  # [N, C], [n] int32 -> out [n, C]
    c, i = cuda.grid(2)
    if i < rows.shape[0] and c < x.shape[1]:
        out[i, c] = x[rows[i], c]


def store_kv(qkv, pool_k, pool_v, slot_mapping, stream=0):
    N, C = qkv.shape[0], pool_k.shape[1]
    store_kv_kernel[(ceil_div(C, BLOCK), N), (BLOCK, 1), stream](qkv, pool_k, pool_v, slot_mapping)


def paged_attention(q, pool_k, pool_v, positions, seq, block_tables, block_size, n_head, out,
                    threads=BLOCK, stream=0):  # device [N, *], [slots, C] x 2, [N] x 2, [n_seqs, max_blocks] -> [N, C]
    N, C = q.shape[0], pool_k.shape[1]
    if block_tables.shape[1] * block_size > MAX_CONTEXT:
        raise ValueError(f"paged attention keeps a row of scores in shared memory: at most {MAX_CONTEXT} positions")
    if threads > MAX_ATTENTION_THREADS:
        raise ValueError(f"paged attention runs at most {MAX_ATTENTION_THREADS} threads a block, not {threads}")
    inv_sqrt_d = np.float32(1.0 / math.sqrt(C // n_head))
    paged_attention_kernel[(n_head, N), threads, stream](q, pool_k, pool_v, positions, seq, block_tables,
                                                         np.int32(block_size), np.int32(n_head), inv_sqrt_d, out)
    return out


def embedding_at(wte, wpe, ids, positions, out, stream=0):
    N, C = ids.shape[0], wte.shape[1]
    embedding_at_kernel[(ceil_div(C, BLOCK), N), (BLOCK, 1), stream](wte, wpe, ids, positions, out)
    return out


def gather_rows(x, rows, out, stream=0):
    n, C = rows.shape[0], x.shape[1]
    gather_rows_kernel[(ceil_div(C, BLOCK), n), (BLOCK, 1), stream](x, rows, out)
    return out
