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

The only version is this one: it is the simple one (each step is a loop and
a block reduction). Float sums are added in another order than NumPy's, so
a coin that lands within ~1e-7 of a boundary between two tokens can pick
the neighbour; the parity tests draw coins away from such ties.
"""

import math

import numpy as np
from numba import cuda, float32, int32

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
    sample_row(logits, temperature, top_k, top_p, coin, weights, bits, out, 0)


@cuda.jit
def sample_batch_kernel(logits, temperature, top_k, top_p, coin, weights, bits, out):
    # one block per row: logits [n, V]; temperature, top_k, top_p, coin [n]; weights, bits [n, V]; out [n]
    r = cuda.blockIdx.x
    sample_row(logits[r], temperature[r], top_k[r], top_p[r], coin[r], weights[r], bits[r], out, r)


@cuda.jit(device=True, inline="always")
def sample_row(logits, temperature, top_k, top_p, coin, weights, bits, out, row):  # the chosen id -> out[row]
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
    for `max_rows` rows, allocated once; per-row settings come in as arrays."""

    def __init__(self, max_rows, vocab_size, block_size=SAMPLE_BLOCK):
        self.weights = cuda.device_array((max_rows, vocab_size), dtype=np.float32)
        self.bits = self.weights.view(np.int32)
        self.out = cuda.device_array(max_rows, dtype=np.int32)
        self.block_size = block_size

    def launch(self, logits, settings):  # device [n, V]; n tuples (temperature, top_k, top_p, coin) -> device [n]
        n, V = logits.shape
        temperature, top_k, top_p, coin = (np.array(column, dtype=dtype) for column, dtype in
                                           zip(zip(*settings), (np.float32, np.int64, np.float32, np.float32)))
        top_k = np.minimum(top_k, V).astype(np.int32)  # any k >= V keeps everything
        threads = min(self.block_size, MAX_BLOCK // 2)
        sample_batch_kernel[n, threads](logits, cuda.to_device(temperature), cuda.to_device(top_k),
                                        cuda.to_device(top_p), cuda.to_device(coin), self.weights[:n],
                                        self.bits[:n], self.out[:n])
        return self.out[:n]


def sample(logits, temperature, top_k, top_p, coin, block_size=SAMPLE_BLOCK):  # device [V] -> int
    """One token id; the same coin picks what reference.sampling.sample picks."""
    return int(Sampler(logits.shape[0], block_size).launch(logits, temperature, top_k, top_p, coin).copy_to_host()[0])
