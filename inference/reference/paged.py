"""Many sequences in one step, their keys and values in a pool of blocks.

    pool = KVPool(config, n_blocks=64, block_size=16)
    hidden = batch_hidden_states(params, config, pool, chunks)   # [N, C], N = all new tokens
    logits = batch_lm_head(hidden[rows], params["wte"])          # [n, V], only where we sample

A chunk is one sequence's new tokens in this step: a piece of a prompt
(prefill) or the one token it generated last (decode), at positions
start..start+T-1, with the block table that says where its keys and values
live: position p is row p % B of block table[p // B]. The engine chooses the
chunks (inference.engine); this file only computes them.

Batch invariance. Every row is computed exactly as `model.py` computes a
one-token decode step at that position: its own matrix-vector product in
each linear layer (not one matrix-matrix product over all rows, whose
rounding depends on how many rows there are), and its own attention over
the keys it may see. So a sequence's logits are bit for bit the same
whether it runs alone or beside any others, in one prefill chunk or many,
from cached blocks or not, and the same as `model.py` fed one token at a
time. docs/tutorials/08-batching.md measures what this costs.
"""

from dataclasses import dataclass
from itertools import accumulate

import numpy as np

from .layers import attention, embedding, gelu, layer_norm, merge_heads, split_heads
from .sampling import Sampling


class KVPool:
    """Keys and values of every layer in fixed-size blocks:
    k, v [n_layer, n_blocks * block_size, C]; slot s is row s % B of block s // B."""

    def __init__(self, config, n_blocks: int, block_size: int):
        shape = (config.n_layer, n_blocks * block_size, config.n_embd)
        # NaN, not zeros: a slot read before it is written poisons the answer instead of
        # passing unseen; and written now, so the first requests do not pay the page faults.
        self.k = np.full(shape, np.nan, dtype=np.float32)
        self.v = np.full(shape, np.nan, dtype=np.float32)
        self.n_blocks, self.block_size = n_blocks, block_size

    @staticmethod
    def nbytes(config, n_blocks: int, block_size: int) -> int:  # keys and values of every layer, float32
        return 2 * config.n_layer * n_blocks * block_size * config.n_embd * 4


@dataclass
class Chunk:
    ids: list[int]          # the new tokens, at positions start..start + len(ids) - 1
    start: int
    block_table: list[int]  # the sequence's blocks, covering at least start + len(ids) positions
    sampling: Sampling | None = None  # how to pick the next token after the last one (sampling.py);
                                      # None for a piece of a prompt that goes on

    @property
    def end(self) -> int:
        return self.start + len(self.ids)


def slots(block_table, positions, block_size):  # [n] positions -> [n] rows of the pool
    return np.asarray(block_table, dtype=np.int64)[positions // block_size] * block_size + positions % block_size


def batch_rows(chunks, block_size, width=None):
    """A step's rows, chunk after chunk, as the compiled backends take them: token
    ids [N], positions [N], the chunk each row belongs to [N], the slot its key
    and value go to [N]; and the block tables [n, width], zero-padded. Built as
    Python lists, one array each at the end: a step has few rows, and NumPy's
    per-call cost would be most of the work."""
    ids, positions, seq, slot_mapping = [], [], [], []
    for i, c in enumerate(chunks):
        span = range(c.start, c.end)
        ids += c.ids
        positions += span
        seq += [i] * len(span)
        slot_mapping += [c.block_table[p // block_size] * block_size + p % block_size for p in span]
    width = width or max(len(c.block_table) for c in chunks)
    tables = [list(c.block_table) + [0] * (width - len(c.block_table)) for c in chunks]
    return tuple(np.array(rows, dtype=np.int64) for rows in (ids, positions, seq, slot_mapping, tables))


def sampled_rows(chunks):  # -> the chunks that sample a token [n], and the row of each one's last token [n]
    sampled = [i for i, c in enumerate(chunks) if c.sampling is not None]
    ends = list(accumulate(len(c.ids) for c in chunks))  # [len(chunks)] each chunk's last row + 1
    return sampled, np.array([ends[i] - 1 for i in sampled], dtype=np.int64)


def row_linear(x, w, b):  # [N, n_in], [n_in, n_out], [n_out] -> [N, n_out]
    """x @ w + b, each row by its own matrix-vector product (see the docstring above)."""
    return np.matmul(x[:, None, :], w)[:, 0] + b


def store_kv(pool_k, pool_v, k, v, slot_mapping):  # [slots, C] x 2, [N, C] x 2, [N]
    pool_k[slot_mapping] = k
    pool_v[slot_mapping] = v


def paged_attention(q, pool_k, pool_v, chunks, n_head, block_size, visible=None):  # [N, C], [slots, C] x 2 -> [N, C]
    """Each query row attends over its own sequence's positions 0..p, read
    through the block table, exactly as a decode step at position p would.
    visible[i]: the slots of chunk i's positions 0..end-1 (computed if not given)."""
    if visible is None:
        visible = [slots(c.block_table, np.arange(c.end), block_size) for c in chunks]
    out, row = np.empty_like(q), 0
    for chunk, chunk_slots in zip(chunks, visible):
        kh, vh = split_heads(pool_k[chunk_slots], n_head), split_heads(pool_v[chunk_slots], n_head)  # [H, S, D]
        for p in range(chunk.start, chunk.end):
            qh = split_heads(q[row:row + 1], n_head)  # [H, 1, D]
            no_mask = np.zeros((1, p + 1), dtype=np.float32)
            out[row] = merge_heads(attention(qh, kh[:, :p + 1], vh[:, :p + 1], no_mask))[0]
            row += 1
    return out


def batch_hidden_states(params, config, pool, chunks):  # -> [N, C], after the final layer norm
    """Run every chunk's new tokens through every block, writing their keys
    and values to the pool. N is the total of the chunks' new tokens."""
    ids = np.concatenate([np.asarray(c.ids, dtype=np.int64) for c in chunks])
    positions = np.concatenate([np.arange(c.start, c.end) for c in chunks])
    visible = [slots(c.block_table, np.arange(c.end), pool.block_size) for c in chunks]  # each chunk's 0..end-1
    slot_mapping = np.concatenate([v[c.start:] for c, v in zip(chunks, visible)])  # where the new rows go
    x = embedding(params["wte"], params["wpe"], ids, positions)  # [N, C]
    C = config.n_embd
    for layer, p in enumerate(params["blocks"]):
        h = layer_norm(x, **p["ln_1"], eps=config.eps)
        qkv = row_linear(h, **p["attn"]["c_attn"])  # [N, 3C]
        store_kv(pool.k[layer], pool.v[layer], qkv[:, C:2 * C], qkv[:, 2 * C:], slot_mapping)
        att = paged_attention(qkv[:, :C], pool.k[layer], pool.v[layer], chunks, config.n_head, pool.block_size,
                              visible)
        x = x + row_linear(att, **p["attn"]["c_proj"])
        h = layer_norm(x, **p["ln_2"], eps=config.eps)
        x = x + row_linear(gelu(row_linear(h, **p["mlp"]["c_fc"])), **p["mlp"]["c_proj"])
    return layer_norm(x, **params["ln_f"], eps=config.eps)


def batch_lm_head(x, wte):  # [n, C], [V, C] -> [n, V]
    """The tied output projection, each row on its own, as `lm_head` does for one row."""
    return np.matmul(x[:, None, :], wte.T)[:, 0]
