"""Choosing the next token on the GPU, mirroring `reference.sampling.sample`.

    sample(logits, temperature, top_k, top_p, coin) -> token id

The rules (see reference/sampling.py) were written so that a GPU needs no
sort: top-k and top-p each keep the tokens whose weight is at least some
threshold, and the coin walks the kept tokens in id order. One block of
threads does it all, and only the chosen id (4 bytes) goes back to the host.

1. block_argmax of the logits: the max m (and, for greedy, the answer).
2. w_i = exp((logit_i - m) / temperature), written to a scratch array.
3. Thresholds by bisection on the bits of a float: for w >= 0, ordering the
   IEEE-754 bit patterns as integers orders the floats. So "the k-th largest
   weight" is the largest bit pattern b with count(bits >= b) >= k, found in
   ~30 rounds of "count in parallel, halve the interval". top-p is the
   smallest b with mass(kept weights with bits > b) < top_p * total.
   Both thresholds are bit patterns of weights that exist, so ties are kept
   exactly as the reference keeps them.
4. The walk: each thread owns a contiguous chunk of ids and sums its kept
   weights; a scan of those chunk sums in shared memory finds the chunk in
   which the running sum passes coin * total, and its thread walks it.

The batch kernel also takes min_p (one more threshold: a weight of at least
min_p, compared as bits like the others) and, per row that asks, writes the
chosen token's log-probability: one more reduction, the sum of all weights,
so only 4 more bytes come back. Penalties change the logits before it, in
`penalize_kernel`: the host sends each row's seen ids and what to subtract.

The only version is this one: it is the simple one (each step is a loop and
a block reduction). Its float32 sums are added in another order than the
reference's float64 walk, so a coin that lands within ~1e-6 (of the total)
of a boundary between two tokens can pick the neighbour; the parity tests
accept the neighbour only there.
"""

import math
from typing import NamedTuple

import numpy as np
from numba import cuda, float32, int32

from ..reference.sampling import Pick, Sampling, log_softmax, top_logprobs
from .common import MAX_BLOCK, NEG_INF, SAMPLE_BLOCK, block_argmax, block_sum

ONE_BITS = 0x3F800000  # the bit pattern of 1.0f, the largest weight (the max logit's)


@cuda.jit(device=True)
def count_at_least(bits, threshold):  # how many weights have bit pattern >= threshold
    n = float32(0)
    for i in range(cuda.threadIdx.x, bits.shape[0], cuda.blockDim.x):
        if bits[i] >= threshold:
            n += float32(1)
    return block_sum(n)


@cuda.jit(device=True)
def mass_above(weights, bits, keep_from, threshold):  # sum of kept weights whose bits are > threshold
    s = float32(0)
    for i in range(cuda.threadIdx.x, bits.shape[0], cuda.blockDim.x):
        if bits[i] >= keep_from and bits[i] > threshold:
            s += weights[i]
    return block_sum(s)


@cuda.jit
def sample_kernel(logits, temperature, top_k, top_p, coin, weights, bits, out):
    # logits [V]; weights [V] scratch, bits = the same memory viewed as int32; out [1] int32
    sample_row(logits, temperature, top_k, top_p, int32(0), coin, weights, bits, out, 0)


# The batch kernel's per-row settings, packed in two small arrays (one upload each per step):
TEMPERATURE, TOP_P, COIN = 0, 1, 2  # columns of `floats` [n, 3] float32
TOP_K, MIN_P_BITS, WANT_LOGPROB = 0, 1, 2  # columns of `ints` [n, 3] int32


@cuda.jit
def sample_batch_kernel(logits, floats, ints, weights, bits, out, logprob):
    # one block per row: logits [n, V]; floats, ints [n, 3] (the columns above); weights, bits [n, V];
    # out [n] int32; logprob [n] float32, written where ints[r, WANT_LOGPROB] != 0
    r = cuda.blockIdx.x
    temperature = floats[r, TEMPERATURE]
    sample_row(logits[r], temperature, ints[r, TOP_K], floats[r, TOP_P], ints[r, MIN_P_BITS], floats[r, COIN],
               weights[r], bits[r], out, r)
    if ints[r, WANT_LOGPROB] != 0:
        row_logprob(logits[r], temperature, out, logprob, r)


@cuda.jit
def penalize_kernel(logits, ids, subtract, offsets, repetition):
    # one block per row: logits [n, V], changed in place; row r's seen ids are ids[offsets[r]:offsets[r + 1]]
    # (distinct, so no two threads touch one logit), with subtract [same] and repetition [n]
    r, t = cuda.blockIdx.x, cuda.threadIdx.x
    rp = repetition[r]
    for j in range(offsets[r] + t, offsets[r + 1], cuda.blockDim.x):
        x = logits[r, ids[j]]
        x = x / rp if x > float32(0) else x * rp
        logits[r, ids[j]] = x - subtract[j]


@cuda.jit(device=True, inline="always")
def row_logprob(logits, temperature, out, logprob, row):
    """log softmax(logits / temperature) at the chosen id (temperature 1 when greedy), as
    reference.sampling.log_softmax computes it: the max, then the sum of exp."""
    cuda.syncthreads()  # out[row] was written by one thread
    t, step = cuda.threadIdx.x, cuda.blockDim.x
    temp = temperature if temperature > float32(0) else float32(1)
    best, best_i = NEG_INF, int32(logits.shape[0])
    for i in range(t, logits.shape[0], step):
        if logits[i] > best:
            best, best_i = logits[i], int32(i)
    m = logits[block_argmax(best, best_i)]
    z = float32(0)
    for i in range(t, logits.shape[0], step):
        z += math.exp((logits[i] - m) / temp)
    z = block_sum(z)
    if t == 0:
        logprob[row] = (logits[out[row]] - m) / temp - math.log(z)


@cuda.jit(device=True, inline="always")
def sample_row(logits, temperature, top_k, top_p, min_p_bits, coin, weights, bits, out, row):
    # the chosen id -> out[row]; min_p_bits: the bit pattern of min_p as a float32 (0: off)
    t, step = cuda.threadIdx.x, cuda.blockDim.x
    V = logits.shape[0]
    best, best_i = NEG_INF, int32(V)
    for i in range(t, V, step):
        if logits[i] > best:
            best, best_i = logits[i], int32(i)
    best_i = block_argmax(best, best_i)
    if temperature == float32(0):
        if t == 0:
            out[row] = best_i
        return
    m = logits[best_i]
    for i in range(t, V, step):
        weights[i] = math.exp((logits[i] - m) / temperature)
    cuda.syncthreads()

    keep_from = int32(0)  # kept: bits >= keep_from
    if 0 < top_k < V:
        lo, hi = int32(0), int32(ONE_BITS)  # invariant: count(bits >= lo) >= top_k
        while lo < hi:
            mid = lo + (hi - lo + 1) // 2
            if count_at_least(bits, mid) >= float32(top_k):
                lo = mid
            else:
                hi = mid - 1
        keep_from = lo
    if min_p_bits > keep_from:  # a weight >= min_p: the same order on bits as on floats
        keep_from = min_p_bits
    if top_p < float32(1):
        budget = top_p * mass_above(weights, bits, keep_from, int32(-1))
        lo, hi = keep_from, int32(ONE_BITS)  # smallest b with mass_above(b) < budget
        while lo < hi:
            mid = lo + (hi - lo) // 2
            if mass_above(weights, bits, keep_from, mid) < budget:
                hi = mid
            else:
                lo = mid + 1
        keep_from = lo

    # The walk, in id order: thread t owns ids [t * chunk, (t + 1) * chunk).
    chunk = (V + step - 1) // step
    first, end = t * chunk, min((t + 1) * chunk, V)
    mine = float32(0)
    for i in range(first, end):
        if bits[i] >= keep_from:
            mine += weights[i]
    sums = cuda.shared.array(MAX_BLOCK, float32)
    sums[t] = mine
    cuda.syncthreads()
    if t == 0:  # exclusive scan of the chunk sums (one thread: at most 1024 adds)
        running = float32(0)
        for i in range(step):
            s = sums[i]
            sums[i] = running
            running += s
        out[row] = int32(-1)
        sums[step] = running  # the total kept weight
    cuda.syncthreads()
    target = coin * sums[step]
    base = sums[t]
    if base <= target < base + mine:
        walked = float32(0)  # summed in the same order as `mine`, so base + walked reaches base + mine
        for i in range(first, end):
            if bits[i] >= keep_from:
                walked += weights[i]
                if base + walked > target:
                    out[row] = int32(i)
                    break
    cuda.syncthreads()
    if t == 0 and out[row] < 0:  # rounding left target at the very end: take the last kept id
        for i in range(V - 1, -1, -1):
            if bits[i] >= keep_from:
                out[row] = int32(i)
                break


class Sampler:
    """Holds the scratch and the one-int output, allocated once per sequence."""

    def __init__(self, vocab_size, block_size=SAMPLE_BLOCK):
        self.weights = cuda.device_array(vocab_size, dtype=np.float32)
        self.bits = self.weights.view(np.int32)
        self.out = cuda.device_array(1, dtype=np.int32)
        self.block_size = block_size

    def launch(self, logits, temperature, top_k, top_p, coin):
        # the scan writes sums[block_size]: one slot past the last thread
        threads = min(self.block_size, MAX_BLOCK // 2)
        top_k = min(top_k, logits.shape[0])  # any k >= V keeps everything; int32 cannot hold all ks
        sample_kernel[1, threads](logits, np.float32(temperature), np.int32(top_k), np.float32(top_p),
                                  np.float32(coin), self.weights, self.bits, self.out)
        return self.out


class BatchSampler:
    """One token for each of n rows of logits, one block per row: the scratch
    and the settings' buffers for `max_rows` rows, allocated once; the
    penalties' buffers too, for rows that have seen at most `max_seen`
    distinct tokens (a backend passes n_ctx: a sequence sees no more than its
    context holds; None: every token of the vocabulary). The views of the
    buffers' first n rows are made once for each n and kept: a view of a
    device array costs the host about as much as a launch."""

    def __init__(self, max_rows, vocab_size, max_seen=None, block_size=SAMPLE_BLOCK):
        self.weights = cuda.device_array((max_rows, vocab_size), dtype=np.float32)
        self.bits = self.weights.view(np.int32)
        self.floats = cuda.device_array((max_rows, 3), dtype=np.float32)
        self.ints = cuda.device_array((max_rows, 3), dtype=np.int32)
        self.out = cuda.device_array(max_rows, dtype=np.int32)
        self.logprob = cuda.device_array(max_rows, dtype=np.float32)
        seen = max_rows * min(max_seen or vocab_size, vocab_size)
        self.seen_ids = cuda.device_array(seen, dtype=np.int32)
        self.subtract = cuda.device_array(seen, dtype=np.float32)
        self.offsets = cuda.device_array(max_rows + 1, dtype=np.int32)
        self.repetition = cuda.device_array(max_rows, dtype=np.float32)
        self.block_size = block_size
        self.views = {}  # n -> SamplerRows: the buffers' first n rows

    def rows(self, n) -> "SamplerRows":
        if n not in self.views:
            self.views[n] = SamplerRows(self.floats[:n], self.ints[:n], self.weights[:n], self.bits[:n],
                                        self.out[:n], self.logprob[:n])
        return self.views[n]

    def launch(self, logits, samplings: list[Sampling]) -> list[Pick]:
        """device [n, V] logits (penalized in place) -> n Picks, on the host."""
        n, V = logits.shape
        threads = min(self.block_size, MAX_BLOCK // 2)
        self.penalize(logits, samplings, threads)
        floats, ints = np.empty((n, 3), dtype=np.float32), np.empty((n, 3), dtype=np.int32)
        floats[:, [TEMPERATURE, TOP_P, COIN]] = [(s.temperature, s.top_p, s.coin) for s in samplings]
        ints[:, TOP_K] = np.minimum([s.top_k for s in samplings], V)  # any k >= V keeps everything
        ints[:, MIN_P_BITS] = np.array([s.min_p for s in samplings], dtype=np.float32).view(np.int32)
        ints[:, WANT_LOGPROB] = [s.logprobs is not None for s in samplings]
        rows = self.rows(n)
        rows.floats.copy_to_device(floats)
        rows.ints.copy_to_device(ints)
        sample_batch_kernel[n, threads](logits, *rows)
        ids = rows.out.copy_to_host()
        logprobs = rows.logprob.copy_to_host() if ints[:, WANT_LOGPROB].any() else None
        return [self.pick(logits, r, int(ids[r]), s, logprobs) for r, s in enumerate(samplings)]

    def penalize(self, logits, samplings: list[Sampling], threads: int) -> None:
        """Apply the rows' penalties to device [n, V] logits, in place (none: no launch).
        Row r's distinct seen ids are seen_ids[offsets[r]:offsets[r + 1]]."""
        rows = [s.penalties for s in samplings]
        if all(p is None for p in rows):
            return
        ids = np.concatenate([p.ids if p is not None else np.zeros(0, np.int64) for p in rows]).astype(np.int32)
        subtract = np.concatenate([p.subtract if p is not None else np.zeros(0, np.float32) for p in rows])
        offsets = np.concatenate([[0], np.cumsum([len(p.ids) if p is not None else 0 for p in rows])]).astype(np.int32)
        repetition = np.array([p.repetition if p is not None else 1.0 for p in rows], dtype=np.float32)
        n, seen = len(rows), len(ids)
        if seen:
            self.seen_ids[:seen].copy_to_device(ids)
            self.subtract[:seen].copy_to_device(subtract.astype(np.float32, copy=False))
        self.offsets[:n + 1].copy_to_device(offsets)
        self.repetition[:n].copy_to_device(repetition)
        penalize_kernel[n, threads](logits, self.seen_ids[:max(seen, 1)], self.subtract[:max(seen, 1)],
                                    self.offsets[:n + 1], self.repetition[:n])

    @staticmethod
    def pick(logits, r, token, s: Sampling, logprobs) -> Pick:
        if s.logprobs is None:
            return Pick(token)
        top = ()
        if s.logprobs > 0:  # the alternatives are ranked on the host: this row's logits come back
            top = top_logprobs(log_softmax(logits[r].copy_to_host(), s.temperature), s.logprobs)
        return Pick(token, float(logprobs[r]), top)


def sample(logits, temperature, top_k, top_p, coin, block_size=SAMPLE_BLOCK):  # device [V] -> int
    """One token id; the same coin picks what reference.sampling.sample picks."""
    return int(Sampler(logits.shape[0], block_size).launch(logits, temperature, top_k, top_p, coin).copy_to_host()[0])


class SamplerRows(NamedTuple):  # a BatchSampler's buffers, their first n rows: sample_batch_kernel's arguments
    floats: object  # [n, 3] temperature, top_p, coin
    ints: object  # [n, 3] top_k, min_p's bits, whether to write the log-probability
    weights: object  # [n, V] scratch
    bits: object  # [n, V] the weights' bit patterns (the same memory)
    out: object  # [n] the chosen ids
    logprob: object  # [n] their log-probabilities
