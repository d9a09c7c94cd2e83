"""The engine's step on the CPU, compiled by Numba, its matrix products included.

    model = load_model("data/claude-rust-small", device="cpu-numba")

A decode step is 25 matrix-vector products (4 a layer and the LM head) and,
between them, a hundred-odd small operations on one 256-wide row: layer
norms, attention head by head, GELU, the residual adds, sampling. In NumPy
each of those is a call that does little arithmetic, and together they cost
nearly as much as the products (scripts/bench_batching.py). Here the whole
step, from the token ids to the logits, is one compiled call, `step_logits`,
made of one loop for each thing the CUDA backend has a kernel for:

    x = wte[ids] + wpe[positions];  h = layer_norm(x)    per layer:
    qkv = h @ c_attn.w                                   product
    attend(qkv + b, store k and v in the pool, ...)      attention
    x += att @ c_proj.w + b;  h = layer_norm(x)          product, residual_layer_norm
    fc = gelu(h @ c_fc.w + b)                            product (and bias_gelu in it)
    x += fc @ c_proj.w + b;  h = next layer norm(x)      product, residual_layer_norm
    logits = h[last rows] @ wte.T                        product

One call, not thirty: Python's cost per call is paid once a step, and the
engine's thread lets go of Python's lock (the GIL) for the whole step,
where it took it back between every two loops before.

A loop becomes vector instructions only if nothing in it is a call or a
branch the compiler cannot turn into arithmetic: GELU's and the softmax's
exp is `exp32`, e^x as arithmetic instead of a call to the C library, and
no division is checked for a zero divisor (error_model "numpy").

The products are our own (`rows_times`), not NumPy's, built as fast matrix
products are: the weights in panels of 16 outputs, and a tile of rows (eight
with AVX-512, four with AVX2) whose 16 sums a row stay in vector registers
(vectors.py) while the panel streams past, each weight loaded once for the
whole tile. Every output is its terms summed in k order, one fused
multiply-add each, in any tile: a row's bits do not depend on the others in
its batch, and batch invariance holds by construction. OpenBLAS's product
for a few rows is not invariant, and its matrix-vector product per row,
which is, took 2.1-3.0x as long for one row on the same two cores
(scripts/bench_batching.py's first table). The other loops work on each row
alone, and sum in their own order (`fastmath` lets the compiler reorder
sums into vector instructions), so the results are the reference's to
float32 rounding, not bit for bit; the tests check them against it as
they check the CUDA backend. Penalties and log-probabilities stay NumPy's
(reference/sampling.py's `choose`), and so do single-sequence sessions
(`new_session`, `forward`). Loading the model compiles the step (10 s on
a 2-core CPU, while the server answers 503), and Numba caches it on disk
where it has a place to write (vectors.py's CACHE): later starts load it.

Every core takes part in a step: each product's outputs are shared among
them (`rows_times_on_all_cores`), and so are the rows' attentions
(`attend_on_all_cores`), each output and row computed by the same loop
whichever core takes it. Every core the process may use, that is: no more
threads than a container's CPU quota allows (cores.py).
"""

import logging
import math
import threading
from contextlib import contextmanager
from typing import NamedTuple

import numba
import numpy as np
from llvmlite import binding as llvm
from numba import njit, prange, types
from numba.extending import intrinsic

from ..reference.paged import Chunk, batch_rows, sampled_rows
from ..reference.sampling import Pick, Sampling, penalize, picked
from . import DeviceError
from .cores import cores_allowed
from .numpy_backend import NumpyModel
from .vectors import CACHE, LANES, LINE, fma, load, prefetch, splat, store, zeros

# Reorder sums (so the compiler may use vector instructions) and fuse multiply-adds. Not "no NaNs or
# infs", which would let a broken forward pass pass unseen, nor x / t as x * (1 / t): for a tiny
# temperature t, 1 / t overflows to inf and the likeliest token's 0 * inf is NaN.
FAST = {"reassoc", "contract", "nsz"}
# How every loop below is compiled. error_model "numpy": a float division by zero gives inf or NaN as in
# NumPy (and an integer one 0), where Numba's default checks each division so that it can raise Python's
# ZeroDivisionError, a branch that keeps the compiler from making vector instructions of a loop (bias_gelu
# was several times slower with it, in a trial). nogil: while the engine's thread computes, the server's
# threads may run Python (write tokens to sockets), as they may during NumPy's BLAS calls.
LOOP = dict(fastmath=FAST, cache=CACHE, nogil=True, error_model="numpy")
GELU_SCALE = np.float32(math.sqrt(2.0 / math.pi))
log = logging.getLogger("inference.backends")


@njit(**LOOP)
def normalize_rows(x, g, b, eps, out):  # [N, C] -> out [N, C]: reference.layers.layer_norm
    N, C = x.shape
    n = np.float32(C)  # not the int C: float32 / int is float64 in Numba
    for i in range(N):
        mean = np.float32(0)
        for j in range(C):
            mean += x[i, j]
        mean /= n
        variance = np.float32(0)
        for j in range(C):
            variance += (x[i, j] - mean) * (x[i, j] - mean)
        scale = np.float32(1) / np.sqrt(variance / n + eps)
        for j in range(C):
            out[i, j] = g[j] * ((x[i, j] - mean) * scale) + b[j]


@njit(**LOOP)
def residual_layer_norm(x, y, bias, g, b, eps, out):  # x [N, C] += y [N, C] + bias; out = layer_norm(x)
    """The residual add after a projection, fused with the layer norm that
    reads its result (llm.c fuses the same two)."""
    N, C = x.shape
    for i in range(N):
        for j in range(C):
            x[i, j] += y[i, j] + bias[j]
    normalize_rows(x, g, b, eps, out)


@intrinsic
def float_of_bits(typingctx, bits):  # int32 -> the float32 with the same 32 bits (C's memcpy, a bit cast)
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float32))
    return types.float32(types.int32), codegen


@njit(**LOOP)
def two_to_the(n):  # int32 in -126..127 -> 2.0^n: n + 127 in a float32's exponent bits, the rest 0
    return float_of_bits(np.int32((n + 127) << 23))


LOG2_E = np.float32(1 / math.log(2))
LN2_HIGH = np.float32(0.693359375)  # ln 2 in two parts; this one has 9 bits, so n * LN2_HIGH is exact here
LN2_LOW = np.float32(math.log(2) - 0.693359375)
F2, F3, F4, F5, F6, F7 = (np.float32(1 / math.factorial(k)) for k in range(2, 8))  # 1 / k!


@njit(**(LOOP | {"fastmath": {"contract"}}))
def exp32(x):  # float32 -> e^x, within 2 units in the last place (tests/test_numba_cpu.py)
    """e^x as arithmetic, so that a loop of them becomes vector instructions:
    np.exp is a call to the C library for each value, which the compiler
    cannot vectorize (several times slower over a row, in a trial).
    x = n ln2 + r with n whole and |r| <= ln2 / 2; e^x = 2^n e^r, e^r by
    its Taylor series to r^7 (the next term is below float32's rounding),
    2^n written straight into a float's exponent bits, in two halves so
    that neither overflows before the product does. No "reassoc": it could
    multiply the halves first (2^128 = inf)."""
    if x != x:  # NaN stays NaN: a broken step must not pass unseen
        return x
    x = min(max(x, np.float32(-104)), np.float32(89))  # beyond, e^x is 0 or inf in float32 anyway
    n = np.floor(x * LOG2_E + np.float32(0.5))
    r = (x - n * LN2_HIGH) - n * LN2_LOW
    one = np.float32(1)
    e_r = one + r * (one + r * (F2 + r * (F3 + r * (F4 + r * (F5 + r * (F6 + r * F7))))))  # Horner's rule
    n_1 = np.int32(n) >> 1
    n_2 = np.int32(n) - n_1
    return e_r * two_to_the(n_1) * two_to_the(n_2)


@njit(**LOOP)
def bias_gelu(x, bias):  # [F] in place: gelu(x + bias), tanh approximation
    """0.5 v (1 + tanh(u)) is v * sigmoid(2u): one exp instead of a tanh, the
    same to float32 rounding, and much faster (the C library's tanhf is slow)."""
    for j in range(x.shape[0]):
        v = x[j] + bias[j]
        u = GELU_SCALE * (v + np.float32(0.044715) * v * v * v)
        x[j] = v / (np.float32(1) + exp32(np.float32(-2) * u))


@njit(**LOOP)
def store_kv(qkv, bias, pool_k, pool_v, slot_mapping):  # qkv [N, 3C] += bias; its keys and values to their slots
    N, C = qkv.shape[0], qkv.shape[1] // 3
    for i in range(N):
        for j in range(3 * C):
            qkv[i, j] += bias[j]
        pool_k[slot_mapping[i]] = qkv[i, C:2 * C]
        pool_v[slot_mapping[i]] = qkv[i, 2 * C:]


@njit(**LOOP)
def slot(table, p, block_size):  # a sequence's position p -> its row of the pool, through its block table
    return table[p // block_size] * block_size + p % block_size


AHEAD = 8  # positions: how far ahead of its use attend_row asks for a key or value row


@njit(**LOOP)
def prefetch_row(row):  # [C] float32: a hint that every cache line of the row will be read soon
    for j in range(0, row.shape[0], LINE):
        prefetch(row, j)


@njit(**LOOP)
def attend_row(i, qkv, pool_k, pool_v, positions, seq, block_tables, block_size, n_head, scores, out):
    """Row i's query attends over its own sequence's positions 0..p, read
    through the block table; out[i] = its heads' weighted means of the values.
    scores: [H, >= p + 1] scratch. Each key and value row is read once, for
    every head: between two steps the weights have pushed the pool out of the
    cache, and one pass over whole rows is what the memory prefetcher serves
    best. Each row is asked for AHEAD positions before it is read (a block's
    rows are contiguous, but the next block may be anywhere in the pool)."""
    C = out.shape[1]
    D = C // n_head
    scale = np.float32(1.0 / math.sqrt(D))
    table, S = block_tables[seq[i]], positions[i] + 1
    for p in range(S):  # every head's score at position p
        if p + AHEAD < S:
            prefetch_row(pool_k[slot(table, p + AHEAD, block_size)])
        k = pool_k[slot(table, p, block_size)]
        for h in range(n_head):
            q_h, k_h = qkv[i, h * D:(h + 1) * D], k[h * D:(h + 1) * D]
            dot = np.float32(0)
            for d in range(D):
                dot += q_h[d] * k_h[d]
            scores[h, p] = dot * scale
    for h in range(n_head):  # softmax's numerators (the max subtracted), then divided by their sum
        top = scores[h, :S].max()
        total = np.float32(0)
        for p in range(S):
            scores[h, p] = exp32(scores[h, p] - top)
            total += scores[h, p]
        for p in range(S):
            scores[h, p] /= total
    out[i] = 0
    for p in range(S):  # the weighted mean of the values, every head at once
        if p + AHEAD < S:
            prefetch_row(pool_v[slot(table, p + AHEAD, block_size)])
        v = pool_v[slot(table, p, block_size)]
        for h in range(n_head):
            w, v_h, out_h = scores[h, p], v[h * D:(h + 1) * D], out[i, h * D:(h + 1) * D]
            for d in range(D):
                out_h[d] += w * v_h[d]


@njit(**LOOP)
def attend(qkv, bias, pool_k, pool_v, slot_mapping, positions, seq, block_tables, block_size, n_head, out):
    """Add the c_attn bias, store every row's key and value in the pool at its
    slot, then each row attends (attend_row). qkv [N, 3C]; out [N, C]."""
    store_kv(qkv, bias, pool_k, pool_v, slot_mapping)
    scores = np.empty((n_head, positions.max() + 1), dtype=np.float32)  # [H, S]
    for i in range(out.shape[0]):
        attend_row(i, qkv, pool_k, pool_v, positions, seq, block_tables, block_size, n_head, scores, out)


@njit(**LOOP, parallel=True)
def attend_on_all_cores(qkv, bias, pool_k, pool_v, slot_mapping, positions, seq, block_tables, block_size, n_head,
                        out):
    """attend, its rows shared among Numba's threads: every key and value is
    stored before any row attends, and each row is computed by the same loop."""
    store_kv(qkv, bias, pool_k, pool_v, slot_mapping)
    for i in prange(out.shape[0]):
        scores = np.empty((n_head, positions[i] + 1), dtype=np.float32)  # [H, S], a task's own
        attend_row(i, qkv, pool_k, pool_v, positions, seq, block_tables, block_size, n_head, scores, out)


@njit(**LOOP)
def largest(values):  # [V] -> values.max(): NaN if any value is NaN
    """Sixteen running maxima side by side, which the compiler makes vector
    instructions of; values.max() compares one value at a time (3x slower
    over 4,096 logits, in a trial). A NaN never wins a comparison, so the
    NaNs are counted apart."""
    V, lanes = values.shape[0], 16
    tops = np.full(lanes, -np.inf, dtype=np.float32)
    nans = 0
    for i in range(0, V - V % lanes, lanes):
        for j in range(lanes):
            v = values[i + j]
            tops[j] = v if v > tops[j] else tops[j]
            nans += v != v
    top = tops.max()
    for v in values[V - V % lanes:]:
        top = v if v > top else top
        nans += v != v
    return top if nans == 0 else np.float32(np.nan)


@njit(**LOOP)
def sift_down(heap, i):  # heap[i] moves down past every smaller child: [k] a min-heap again
    v = heap[i]
    while 2 * i + 1 < heap.shape[0]:
        child = 2 * i + 1
        if child + 1 < heap.shape[0] and heap[child + 1] < heap[child]:
            child += 1
        if heap[child] >= v:
            break
        heap[i] = heap[child]
        i = child
    heap[i] = v


@njit(**LOOP)
def kth_largest(values, k):  # [V] -> the k-th largest value (ties counted), 0 < k <= V
    """One pass, keeping the k largest so far in a min-heap, whose root is
    the least of them; a later value gets in only above it (for the 40
    largest of 4,096 logits, rarely) and sinks to its place in log2(k)
    steps. Faster than np.partition (which copies the row, then selects),
    and than finding the least of the k anew at each entry, in trials."""
    heap = values[:k].copy()  # [k]
    for i in range(k // 2 - 1, -1, -1):
        sift_down(heap, i)
    for j in range(k, values.shape[0]):
        if values[j] > heap[0]:
            heap[0] = values[j]
            sift_down(heap, 0)
    return heap[0]


COLUMNS = 256  # top_k_ids reads a row of logits as rows of this many columns


@njit(**LOOP)
def column_maxima(values, width):  # [V] as V // width rows of `width` values (the rest left out) -> [width]
    """Each column's largest value: the rows compared lane by lane, a vector
    instruction for every 16 columns."""
    tops = values[:width].copy()
    for r in range(1, values.shape[0] // width):
        for c in range(width):
            v = values[r * width + c]
            tops[c] = v if v > tops[c] else tops[c]
    return tops


@njit(**LOOP)
def top_k_ids(values, k):  # [V] (no NaN), 0 < k < V -> the ids of the k largest values and their ties, in id order
    """The k-th largest value is at least the k-th largest of the columns'
    maxima (k columns hold a value that large, one each), so only the values
    that reach that floor, in the columns whose maximum does and past the last
    full row, can be among the k largest, and kth_largest then works on them
    alone (faster than over the whole row, then np.nonzero for the ids, in a
    trial)."""
    V = values.shape[0]
    width = COLUMNS if V >= 2 * COLUMNS and k <= COLUMNS else V  # else one row: every value its own column
    rows = V // width
    tops = column_maxima(values, width)
    floor = kth_largest(tops, k)
    ids, n = np.empty(V, dtype=np.int64), 0
    for c in range(width):
        if tops[c] >= floor:
            for r in range(rows):
                if values[r * width + c] >= floor:
                    ids[n] = r * width + c
                    n += 1
    for j in range(rows * width, V):
        if values[j] >= floor:
            ids[n] = j
            n += 1
    ids = np.sort(ids[:n])
    kept = values[ids]
    return ids[kept >= kth_largest(kept, k)]


@njit(**LOOP)
def sample_row(logits, temperature, top_k, top_p, coin, min_p):  # [V] float32 -> id, or -1 if not finite
    """reference.sampling.sample's rules in one loop each. With top-k on, only
    the k likeliest tokens (and ties) get a weight: exp() for 40 tokens, not
    4,096. The sums run in their own order and the k-th largest is found among
    logits, not weights, so near a boundary the pick may differ from NumPy's."""
    V = logits.shape[0]
    top = largest(logits)
    if not np.isfinite(top):
        return -1
    if temperature == 0:
        for i in range(V):  # the lowest id on ties
            if logits[i] == top:
                return i
    ids = top_k_ids(logits, top_k) if 0 < top_k < V else np.arange(V)  # the candidates, in id order
    weights = np.exp((logits[ids] - top) / temperature)  # max 1
    threshold = np.float32(min_p)
    if top_p < 1.0:  # the smallest set of the likeliest (kept) tokens that reaches top_p, plus ties
        ordered = np.sort(weights[weights >= threshold])[::-1]
        budget, above, last = np.float32(top_p) * ordered.sum(), np.float32(0), 0
        for r in range(ordered.shape[0]):
            if above >= budget:
                break
            last = r
            above += ordered[r]
        threshold = max(threshold, ordered[last])
    total = np.float32(0)
    for w in weights:
        if w >= threshold:
            total += w
    target, running, chosen = np.float32(coin) * total, np.float32(0), -1
    for c in range(ids.shape[0]):  # walk the kept tokens in id order
        if weights[c] >= threshold:
            chosen = ids[c]
            running += weights[c]
            if running > target:
                break
    return chosen


# Sampling keeps Python's lock (the GIL): a call of tens of microseconds that let go of it would hand it to
# the server's threads, which take it whenever a token comes, and then wait for it back (a step's rows
# sampled one call each, letting go every time, made the server's step 7% slower in a trial).
SAMPLER = LOOP | {"nogil": False}


@njit(**SAMPLER)
def sample_rows(logits, settings, out):  # [n, V]; [n, 5] temperature, top_p, coin, min_p, top_k; -> out [n] ids
    for r in range(logits.shape[0]):
        out[r] = sample_row(logits[r], *row_settings(settings[r]))


@njit(**SAMPLER, parallel=True)
def sample_rows_on_all_cores(logits, settings, out):  # sample_rows, its rows shared among Numba's threads
    for r in prange(logits.shape[0]):
        out[r] = sample_row(logits[r], *row_settings(settings[r]))


@njit(**SAMPLER)
def row_settings(row):  # [5] float32 -> sample_row's temperature, top_k, top_p, coin, min_p
    return row[0], np.int64(row[4]), row[1], row[2], row[3]


@njit(**SAMPLER)
def sample_batch(logits, settings, all_cores):  # -> [n] ids: sample_rows, on all cores from two rows on
    out = np.empty(logits.shape[0], dtype=np.int64)
    if all_cores and logits.shape[0] > 1:
        sample_rows_on_all_cores(logits, settings, out)
    else:
        sample_rows(logits, settings, out)
    return out


def choose_rows(logits, samplings: list[Sampling], all_cores=False) -> list[Pick]:
    """reference.sampling.choose for each row of [n, V] logits (penalized in
    place), every row's token picked in one compiled call, by the same loop
    whatever the batch: a row's token does not depend on the others. Few
    calls to NumPy: right after a step has swept the cache each costs
    microseconds."""
    for r, s in enumerate(samplings):
        if s.penalties is not None:
            logits[r] = penalize(logits[r], s.penalties)
    # top_k as a float32 too: exact below 2^24, and one array is one call
    settings = np.array([(s.temperature, s.top_p, s.coin, s.min_p, s.top_k) for s in samplings], np.float32)
    with ALL_CORES:
        ids = sample_batch(logits, settings.reshape(-1, 5), all_cores).tolist()
    if ids and min(ids) < 0:
        raise FloatingPointError(f"the model's logits are not finite (max {logits.max()}): no token can be chosen")
    return [picked(token, logits[r], s) for r, (token, s) in enumerate(zip(ids, samplings))]


PANEL = 2 * LANES  # outputs a panel: two vectors, so that each x[k] fetched feeds two multiply-adds
# Inputs: how far ahead of its use a tile asks for a panel's weights (a cache line an input, so 2 KB on).
# The memory prefetcher alone ran behind: asked for, a step's products for 8 rows took 12% less time.
PANEL_AHEAD = 32
# Rows a tile: eight rows' 16 sums take 16 vector registers, which only AVX-512's 32 leave room beside the
# panel's two and x[k]; with AVX2's 16, four rows (8 sums) keep to registers.
TILE_ROWS = 8 if llvm.get_host_cpu_features().get("avx512f") else 4


def panels_of(w_t):  # [n_out, n_in] -> [ceil(n_out / 16), n_in * 16], padded with zero outputs
    """A product's weights as the tiles read them: panel p holds outputs
    16p..16p+15, and its k-th 16 floats are their weights for input k, so a
    tile walks each panel front to back."""
    n_out, n_in = w_t.shape
    padded = np.zeros((-(-n_out // PANEL) * PANEL, n_in), np.float32)
    padded[:n_out] = w_t
    return np.ascontiguousarray(padded.reshape(-1, PANEL, n_in).transpose(0, 2, 1).reshape(-1, n_in * PANEL))


@njit(**LOOP)
def one_row(x, panel, out, i, j):  # out[i, j:j + 16] = x[i] @ panel's 16 outputs
    """The tile one row high: row i's 16 sums in two vectors, a (outputs
    j..j+7) and b (j+8..j+15); for each input k, x[i, k] times the panel's
    16 weights for k, added in. four_rows and eight_rows do the same for
    more rows, each weight loaded once for all of them."""
    a, b = zeros(), zeros()
    for k in range(x.shape[1]):
        prefetch(panel, PANEL * (k + PANEL_AHEAD))
        w0, w1 = load(panel, PANEL * k), load(panel, PANEL * k + LANES)
        s = splat(x[i, k])
        a, b = fma(s, w0, a), fma(s, w1, b)
    store(out[i], j, a), store(out[i], j + LANES, b)


@njit(**LOOP)
def four_rows(x, panel, out, i, j):  # out[i:i + 4, j:j + 16] = x[i:i + 4] @ panel's 16 outputs
    a0, a1, a2, a3, b0, b1, b2, b3 = zeros(), zeros(), zeros(), zeros(), zeros(), zeros(), zeros(), zeros()
    for k in range(x.shape[1]):
        prefetch(panel, PANEL * (k + PANEL_AHEAD))
        w0, w1 = load(panel, PANEL * k), load(panel, PANEL * k + LANES)
        s = splat(x[i, k])
        a0, b0 = fma(s, w0, a0), fma(s, w1, b0)
        s = splat(x[i + 1, k])
        a1, b1 = fma(s, w0, a1), fma(s, w1, b1)
        s = splat(x[i + 2, k])
        a2, b2 = fma(s, w0, a2), fma(s, w1, b2)
        s = splat(x[i + 3, k])
        a3, b3 = fma(s, w0, a3), fma(s, w1, b3)
    for r, (a, b) in enumerate(((a0, b0), (a1, b1), (a2, b2), (a3, b3))):
        store(out[i + r], j, a), store(out[i + r], j + LANES, b)


@njit(**LOOP)
def eight_rows(x, panel, out, i, j):  # out[i:i + 8, j:j + 16] = x[i:i + 8] @ panel's 16 outputs
    a0, a1, a2, a3, a4, a5, a6, a7 = zeros(), zeros(), zeros(), zeros(), zeros(), zeros(), zeros(), zeros()
    b0, b1, b2, b3, b4, b5, b6, b7 = zeros(), zeros(), zeros(), zeros(), zeros(), zeros(), zeros(), zeros()
    for k in range(x.shape[1]):
        prefetch(panel, PANEL * (k + PANEL_AHEAD))
        w0, w1 = load(panel, PANEL * k), load(panel, PANEL * k + LANES)
        s = splat(x[i, k])
        a0, b0 = fma(s, w0, a0), fma(s, w1, b0)
        s = splat(x[i + 1, k])
        a1, b1 = fma(s, w0, a1), fma(s, w1, b1)
        s = splat(x[i + 2, k])
        a2, b2 = fma(s, w0, a2), fma(s, w1, b2)
        s = splat(x[i + 3, k])
        a3, b3 = fma(s, w0, a3), fma(s, w1, b3)
        s = splat(x[i + 4, k])
        a4, b4 = fma(s, w0, a4), fma(s, w1, b4)
        s = splat(x[i + 5, k])
        a5, b5 = fma(s, w0, a5), fma(s, w1, b5)
        s = splat(x[i + 6, k])
        a6, b6 = fma(s, w0, a6), fma(s, w1, b6)
        s = splat(x[i + 7, k])
        a7, b7 = fma(s, w0, a7), fma(s, w1, b7)
    for r, (a, b) in enumerate(((a0, b0), (a1, b1), (a2, b2), (a3, b3), (a4, b4), (a5, b5), (a6, b6), (a7, b7))):
        store(out[i + r], j, a), store(out[i + r], j + LANES, b)


@njit(**LOOP)
def panels_times(x, panels, out, p0, p1, tile_rows):  # out[:, 16 p0:16 p1] = x [N, n_in] @ those panels
    """Each panel, once fetched, serves every row, tile_rows rows at a time
    (the rows left over in fours, then one by one): a tile's sums stay in
    registers for the whole of n_in, and each weight loaded feeds a
    multiply-add per row of the tile. Every output is the sum of its terms in
    k order, one fused multiply-add each, whatever the tile: a row gets the
    same bits alone as among any others (batch invariance by construction)."""
    N = x.shape[0]
    for p in range(p0, p1):
        panel, j, i = panels[p], PANEL * p, 0
        while tile_rows >= 8 and i + 8 <= N:
            eight_rows(x, panel, out, i, j)
            i += 8
        while tile_rows >= 4 and i + 4 <= N:
            four_rows(x, panel, out, i, j)
            i += 4
        for i in range(i, N):
            one_row(x, panel, out, i, j)


PANELS = 4  # panels a task: 64 outputs, whose weights (64 KB, 256 KB at n_in 1024) stay in the core's cache
# One step's compiled loops at a time in a process: where OpenMP and TBB are missing, Numba's own
# thread pool (its "workqueue" layer) ends the process if two threads start parallel work at once.
ALL_CORES = threading.Lock()


@njit(**LOOP)
def task_times(x, panels, out, task, tile_rows, gelu_bias):  # out[:, 64 task:64 (task + 1)] = x @ those panels
    """One task's PANELS panels, then, for c_fc, its bias and GELU on those
    outputs while they are still in the core's cache (one more pass over the
    whole [N, 4C] after the product, on one core, made a step of 8 rows slower)."""
    p0, p1 = task * PANELS, min(panels.shape[0], (task + 1) * PANELS)
    panels_times(x, panels, out, p0, p1, tile_rows)
    if gelu_bias is not None:
        j0, j1 = PANEL * p0, min(out.shape[1], PANEL * p1)
        for i in range(x.shape[0]):  # a row's slice at a time: a loop over [i, j0:j1] made no vector instructions
            bias_gelu(out[i, j0:j1], gelu_bias[j0:j1])


@njit(**LOOP)
def tasks(panels):  # how many tasks a product's panels make
    return (panels.shape[0] + PANELS - 1) // PANELS


@njit(**LOOP)
def rows_times(x, panels, out, tile_rows, gelu_bias=None):  # x [N, n_in] @ panels_of(w_t) -> out [N, n_out] = x @ w_t.T
    """On one core, task after task. gelu_bias: out = gelu(x @ w_t.T + gelu_bias)."""
    for task in range(tasks(panels)):
        task_times(x, panels, out, task, tile_rows, gelu_bias)
    return out


@njit(**LOOP, parallel=True)
def rows_times_on_all_cores(x, panels, out, tile_rows, gelu_bias=None):  # rows_times, its tasks shared among threads
    """Each output is computed as rows_times computes it, by the same compiled
    loop, so the bits do not depend on which core took it: the outputs are
    cut into tasks of PANELS panels, not the sums."""
    for task in prange(tasks(panels)):
        task_times(x, panels, out, task, tile_rows, gelu_bias)
    return out


@njit(**LOOP)
def product(x, panels, out, tile_rows, all_cores, gelu_bias=None):  # x [N, n_in] @ panels -> out [N, n_out]
    if all_cores:
        return rows_times_on_all_cores(x, panels, out, tile_rows, gelu_bias)
    return rows_times(x, panels, out, tile_rows, gelu_bias)


@njit(**LOOP)
def attention(qkv, bias, pool_k, pool_v, slot_mapping, positions, seq, block_tables, block_size, n_head, out,
              all_cores):
    """attend, its rows on all cores from two rows on (one row's attention
    does not pay for waking the other cores: its heads shared between two
    were no faster in a trial, nor its positions in two halves, each half's
    softmax rescaled to a common max after)."""
    if all_cores and out.shape[0] > 1:
        attend_on_all_cores(qkv, bias, pool_k, pool_v, slot_mapping, positions, seq, block_tables, block_size, n_head,
                            out)
    else:
        attend(qkv, bias, pool_k, pool_v, slot_mapping, positions, seq, block_tables, block_size, n_head, out)


class Weights(NamedTuple):
    """The parameters as step_logits takes them: each layer's stacked, [n_layer, ...],
    the products' weights in panels (panels_of: [P, n_in * 16] a product)."""
    wte: np.ndarray          # [V, C]: the token embeddings
    lm_head: np.ndarray      # [V / 16, C * 16]: wte in panels, the LM head's product
    wpe: np.ndarray          # [n_ctx, C]
    ln_1_g: np.ndarray       # [L, C]
    ln_1_b: np.ndarray       # [L, C]
    c_attn_w: np.ndarray     # [L, 3C / 16, C * 16]
    c_attn_b: np.ndarray     # [L, 3C]
    attn_proj_w: np.ndarray  # [L, C / 16, C * 16]
    attn_proj_b: np.ndarray  # [L, C]
    ln_2_g: np.ndarray       # [L, C]
    ln_2_b: np.ndarray       # [L, C]
    c_fc_w: np.ndarray       # [L, 4C / 16, C * 16]
    c_fc_b: np.ndarray       # [L, 4C]
    mlp_proj_w: np.ndarray   # [L, C / 16, 4C * 16]
    mlp_proj_b: np.ndarray   # [L, C]
    ln_f_g: np.ndarray       # [C]
    ln_f_b: np.ndarray       # [C]


def stacked_weights(params) -> Weights:
    blocks = params["blocks"]

    def stack(get, panels=False):  # w [n_in, n_out] -> its panels (of w.T, a row per output)
        return np.ascontiguousarray(np.stack([panels_of(get(blk).T) if panels else get(blk) for blk in blocks]))
    return Weights(params["wte"], panels_of(params["wte"]), params["wpe"],
                   stack(lambda b: b["ln_1"]["g"]), stack(lambda b: b["ln_1"]["b"]),
                   stack(lambda b: b["attn"]["c_attn"]["w"], True), stack(lambda b: b["attn"]["c_attn"]["b"]),
                   stack(lambda b: b["attn"]["c_proj"]["w"], True), stack(lambda b: b["attn"]["c_proj"]["b"]),
                   stack(lambda b: b["ln_2"]["g"]), stack(lambda b: b["ln_2"]["b"]),
                   stack(lambda b: b["mlp"]["c_fc"]["w"], True), stack(lambda b: b["mlp"]["c_fc"]["b"]),
                   stack(lambda b: b["mlp"]["c_proj"]["w"], True), stack(lambda b: b["mlp"]["c_proj"]["b"]),
                   params["ln_f"]["g"], params["ln_f"]["b"])


@njit(**LOOP)
def step_logits(w, ids, positions, seq, slot_mapping, block_tables, last_rows, pool_k, pool_v, block_size, n_head,
                eps, tile_rows, all_cores):
    """One step, every row through every layer (the module's docstring), then
    the logits of last_rows. w: Weights; the rows [N] as
    reference.paged.batch_rows gives them; pool_k, pool_v [L, slots, C].
    -> [len(last_rows), V]"""
    N, C, L = ids.shape[0], w.wte.shape[1], w.ln_1_g.shape[0]
    x = np.empty((N, C), dtype=np.float32)
    for i in range(N):  # reference.layers.embedding
        for j in range(C):
            x[i, j] = w.wte[ids[i], j] + w.wpe[positions[i], j]
    h, att, y = np.empty((N, C), np.float32), np.empty((N, C), np.float32), np.empty((N, C), np.float32)
    qkv, fc = np.empty((N, 3 * C), np.float32), np.empty((N, 4 * C), np.float32)
    normalize_rows(x, w.ln_1_g[0], w.ln_1_b[0], eps, h)
    for layer in range(L):
        product(h, w.c_attn_w[layer], qkv, tile_rows, all_cores)
        attention(qkv, w.c_attn_b[layer], pool_k[layer], pool_v[layer], slot_mapping, positions, seq, block_tables,
                  block_size, n_head, att, all_cores)
        product(att, w.attn_proj_w[layer], y, tile_rows, all_cores)
        residual_layer_norm(x, y, w.attn_proj_b[layer], w.ln_2_g[layer], w.ln_2_b[layer], eps, h)
        product(h, w.c_fc_w[layer], fc, tile_rows, all_cores, w.c_fc_b[layer])  # gelu(h @ w + b)
        product(fc, w.mlp_proj_w[layer], y, tile_rows, all_cores)
        if layer + 1 < L:  # the next layer norm reads the residual stream
            residual_layer_norm(x, y, w.mlp_proj_b[layer], w.ln_1_g[layer + 1], w.ln_1_b[layer + 1], eps, h)
        else:
            residual_layer_norm(x, y, w.mlp_proj_b[layer], w.ln_f_g, w.ln_f_b, eps, h)
    logits = np.empty((last_rows.shape[0], w.wte.shape[0]), dtype=np.float32)
    return product(h[last_rows], w.lm_head, logits, tile_rows, all_cores)


class NumbaCpuModel(NumpyModel):
    device = "cpu-numba"

    def __init__(self, config, params, tokenizer, name):
        super().__init__(config, params, tokenizer, name)
        self.weights = stacked_weights(params)
        if not CACHE:
            log.warning("cpu-numba: Numba has nowhere to keep its compiled loops (no writable NUMBA_CACHE_DIR, "
                        "__pycache__ beside the package, nor home directory): they compile at every start; "
                        "set NUMBA_CACHE_DIR to a writable directory to keep them")
        # Numba's threads (by default the cores this process may run on), but no more than its CPU quota
        self.cores = min(numba.config.NUMBA_NUM_THREADS, cores_allowed())
        self.tile_rows, self.on_all_cores = TILE_ROWS, False  # on one core until checked
        self.per_thread = threading.local()
        try:
            self.small_step()  # the first step: it compiles (or loads from Numba's cache) every loop
        except ValueError as e:  # NUMBA_THREADING_LAYER asks for a thread pool that is not here
            raise DeviceError(f"cpu-numba cannot compile its loops: {e}") from e
        self.on_all_cores = self.cores > 1 and self.all_cores_serve()

    def step_batch(self, pool, chunks) -> list[Pick | None]:
        """One step over many sequences, as NumpyModel.step_batch: the logits
        of every chunk that samples, then each one's token."""
        picks = [None] * len(chunks)
        sampled, last_rows = sampled_rows(chunks)
        logits = self.batch_logits(pool, chunks, last_rows)
        for i, pick in zip(sampled, choose_rows(logits, [chunks[i].sampling for i in sampled], self.on_all_cores)):
            picks[i] = pick
        return picks

    def batch_logits(self, pool, chunks, last_rows=None):  # -> [n, V], the last row's logits of each chunk that samples
        ids, positions, seq, slot_mapping, tables = batch_rows(chunks, pool.block_size)
        if last_rows is None:
            _, last_rows = sampled_rows(chunks)
        with ALL_CORES:
            if self.on_all_cores:  # for the parallel loops this thread starts, the sampler's too
                self.threads_for_this_thread()
            return step_logits(self.weights, ids, positions, seq, slot_mapping, tables, last_rows, pool.k, pool.v,
                               pool.block_size, self.config.n_head, np.float32(self.config.eps), self.tile_rows,
                               self.on_all_cores)

    def threads_for_this_thread(self):
        """Numba's thread count is each calling thread's own; set once a thread, not
        at every step (right after a step has swept the cache, a call costs several
        times what it costs hot)."""
        if getattr(self.per_thread, "cores", None) != self.cores:
            numba.set_num_threads(self.cores)
            self.per_thread.cores = self.cores

    def small_step(self, block_size=4):  # -> [4, V]: the logits of two steps
        """Three sequences (a prompt's chunk over three blocks, a token, and a
        chunk of a block and a half: 16 rows from random ids), then the first
        one's next token alone (a step of one row)."""
        rng = np.random.default_rng(0)
        greedy = Sampling(temperature=0.0, top_k=0, top_p=1.0, coin=0.5)  # so that every chunk has logits
        chunks = [Chunk(rng.integers(0, self.config.vocab_size, n).tolist(), 0, list(range(3 * i, 3 * i + 3)), greedy)
                  for i, n in enumerate([9, 1, 6])]
        pool = self.new_kv_pool(9, block_size)
        three = self.batch_logits(pool, chunks)
        return np.concatenate([three, self.batch_logits(pool, [Chunk([int(three[0].argmax())], 9, [0, 1, 2], greedy)])])

    @contextmanager
    def loops(self, **settings):  # tile_rows, on_all_cores as given, for what runs within
        was = self.tile_rows, self.on_all_cores
        self.__dict__.update(settings)
        try:
            yield
        finally:
            self.tile_rows, self.on_all_cores = was

    def with_loops(self, **settings):  # -> small_step's logits with tile_rows, on_all_cores as given
        with self.loops(**settings):
            return self.small_step()

    def all_cores_serve(self) -> bool:
        """Whether Numba found a thread pool that serves (OpenMP or TBB: its
        own "workqueue" made a step several times slower than one core), and
        whether a step on all cores gives each sequence the bits it gets on
        one core: the compiler compiles each parallel loop anew. Tried on a
        thread of its own, which ends: OpenMP keeps a team of threads for each
        thread that starts parallel work, and where the teams outnumber the
        cores it lets them sleep sooner, which made the engine's thread's
        products about 2x slower once the loading thread had had a team.
        Anything that fails here leaves the model on one core."""
        answer = [False]

        def check():
            try:
                answer[0] = self.all_cores_keep_bits()
            except Exception as e:  # a parallel loop that does not compile or run here
                log.warning("cpu-numba keeps to one core: its loops on all cores failed: %s", e)

        thread = threading.Thread(target=check, name="cpu-numba-check")
        thread.start()
        thread.join()
        return answer[0]

    def all_cores_keep_bits(self) -> bool:
        """Small steps (small_step) on one core and on all cores: the same
        logits, bit for bit, and the same tokens sampled from them?"""
        one_core = self.with_loops(on_all_cores=False)
        all_cores = self.with_loops(on_all_cores=True)
        coins = [Sampling(1.0, 0, 0.9, coin) for coin in np.linspace(0.05, 0.95, len(one_core))]
        return (numba.threading_layer() in ("omp", "tbb") and np.array_equal(all_cores, one_core)
                and choose_rows(one_core, coins) == choose_rows(all_cores, coins, all_cores=True))
