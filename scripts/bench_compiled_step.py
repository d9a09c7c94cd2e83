"""Would compiling the small operations bring a decode step down to its matmuls?

    python scripts/bench_compiled_step.py [--model DIR] [--repeat 30]

A decode step of the shipped model is 25 matrix-vector products (4 a layer
and the LM head) and, between them, a hundred-odd small NumPy operations on
one 256-wide row: layer norms, attention head by head, GELU, the residual
adds, sampling. scripts/bench_batching.py shows the engine's step costing
1.5-2x its products alone. The obvious suspect is NumPy's per-call overhead,
a few microseconds a call. This script tries the cure: the same step with
everything between two products compiled by Numba (one loop for each fused
piece, as the CUDA backend has a kernel for each), the products still
OpenBLAS's, each row by its own, so it stays batch invariant. It checks the
compiled step against the reference (logits within float32 rounding, the
same greedy tokens), then times, taking turns, the products alone, the
engine's NumPy step and the compiled step, for 1, 8 and 16 decoding
sequences; and one layer's attention alone, hot in the cache and right after
all the step's weights have streamed through it, as they do between steps.

It stays a script: the step it compiles is not part of the server (see
docs/benchmarks.md for what it measured, and why).
"""

import argparse
import math
import time
from pathlib import Path

import numba
import numpy as np
from numba import njit

from bench_batching import best_ms, step_weights
from inference import load_model
from inference.reference.model import KVCache, forward_last
from inference.reference.paged import Chunk, paged_attention, slots
from inference.reference.sampling import Sampling, choose

# reorder sums (so the compiler may use vector instructions) and fuse multiply-adds; not "no NaNs or
# infs", which would let a broken forward pass pass unseen
FAST = {"reassoc", "contract", "nsz", "arcp"}
GELU_SCALE = np.float32(math.sqrt(2.0 / math.pi))


@njit(fastmath=FAST, cache=True)
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


@njit(fastmath=FAST, cache=True)
def residual_layer_norm(x, y, bias, g, b, eps, out):  # x [N, C] += y [N, C] + bias; out = layer_norm(x)
    """The residual add after a projection, fused with the layer norm that
    reads its result (llm.c fuses the same two)."""
    N, C = x.shape
    for i in range(N):
        for j in range(C):
            x[i, j] += y[i, j] + bias[j]
    normalize_rows(x, g, b, eps, out)


@njit(fastmath=FAST, cache=True)
def bias_gelu(x, bias):  # [N, F] in place: gelu(x + bias), tanh approximation
    """0.5 v (1 + tanh(u)) is v * sigmoid(2u), so one exp instead of a tanh:
    the same to float32 rounding, and 3x faster where the libm's tanh is slow."""
    N, F = x.shape
    for i in range(N):
        for j in range(F):
            v = x[i, j] + bias[j]
            u = GELU_SCALE * (v + np.float32(0.044715) * v * v * v)
            x[i, j] = v / (np.float32(1) + np.exp(np.float32(-2) * u))


@njit(fastmath=FAST, cache=True)
def attend(qkv, bias, pool_k, pool_v, slot_mapping, positions, seq, block_tables, block_size, n_head, out):
    """Add the c_attn bias, store every row's key and value in the pool at its
    slot, then each row's query attends over its own sequence's positions
    0..p, read through the block table. qkv [N, 3C]; out [N, C]."""
    N, C = out.shape
    D = C // n_head
    for i in range(N):
        for j in range(3 * C):
            qkv[i, j] += bias[j]
        pool_k[slot_mapping[i]] = qkv[i, C:2 * C]
        pool_v[slot_mapping[i]] = qkv[i, 2 * C:]
    scale = np.float32(1.0 / math.sqrt(D))
    scores = np.empty(positions.max() + 1, dtype=np.float32)
    mean = np.empty(D, dtype=np.float32)
    for i in range(N):
        table, S = block_tables[seq[i]], positions[i] + 1
        for h in range(n_head):
            q = qkv[i, h * D:(h + 1) * D]
            top = np.float32(-np.inf)
            for p in range(S):  # the scores and their max
                k = pool_k[table[p // block_size] * block_size + p % block_size, h * D:(h + 1) * D]
                dot = np.float32(0)
                for d in range(D):
                    dot += q[d] * k[d]
                scores[p] = dot * scale
                top = max(top, scores[p])
            total = np.float32(0)
            for p in range(S):  # softmax's numerators and their sum
                scores[p] = np.exp(scores[p] - top)
                total += scores[p]
            mean[:] = 0
            for p in range(S):  # the weighted mean of the values
                v = pool_v[table[p // block_size] * block_size + p % block_size, h * D:(h + 1) * D]
                w = scores[p] / total
                for d in range(D):
                    mean[d] += w * v[d]
            out[i, h * D:(h + 1) * D] = mean


@njit(fastmath=FAST, cache=True)
def sample_row(logits, temperature, top_k, top_p, coin, min_p):  # [V] float32 -> id, or -1 if not finite
    """reference.sampling.sample's rules in one loop each; the sums run in
    their own order, so near a boundary the pick may differ from NumPy's."""
    V = logits.shape[0]
    top = logits.max()
    if not np.isfinite(top):
        return -1
    if temperature == 0:
        return np.argmax(logits)  # the lowest id on ties
    weights = np.exp((logits - top) / temperature)  # [V], max 1
    threshold = np.float32(min_p)
    if 0 < top_k < V:  # the k-th largest weight
        threshold = max(threshold, np.partition(weights, V - top_k)[V - top_k])
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
    for t in range(V):
        if weights[t] >= threshold:
            total += weights[t]
    target, running, chosen = np.float32(coin) * total, np.float32(0), -1
    for t in range(V):  # walk the kept tokens in id order
        if weights[t] >= threshold:
            chosen = t
            running += weights[t]
            if running > target:
                break
    return chosen


def sample(logits, s: Sampling) -> int:
    return int(sample_row(logits, np.float32(s.temperature), s.top_k, s.top_p, s.coin, s.min_p))


def rows_matmul(x, w, out):  # [N, n_in] @ [n_in, n_out] -> out [N, n_out], each row by its own product
    np.matmul(x[:, None, :], w, out=out[:, None, :])
    return out


class CompiledStep:
    """NumpyModel.step_batch, with everything between two products compiled:

        h = layer_norm(x)                                  per layer:
        qkv = h @ c_attn.w                                 BLAS, row by row
        attend(qkv + b, store k and v in the pool, ...)    one compiled call
        x += att @ c_proj.w + b;  h = layer_norm(x)        BLAS, then one compiled call
        fc = gelu(h @ c_fc.w + b)                          BLAS, then one compiled call
        x += fc @ c_proj.w + b;  h = next layer norm(x)    BLAS, then one compiled call
    """

    def __init__(self, model):
        self.model = model
        self.wte_t = np.ascontiguousarray(model.params["wte"].T)  # [C, V] for the LM head

    def __call__(self, pool, chunks):  # -> (logits [n, V] of the chunks that sample, their ids)
        c, p = self.model.config, self.model.params
        C, blocks, eps = c.n_embd, p["blocks"], np.float32(c.eps)
        ids = np.concatenate([np.asarray(chunk.ids, dtype=np.int64) for chunk in chunks])
        positions = np.concatenate([np.arange(chunk.start, chunk.end) for chunk in chunks])
        seq = np.concatenate([np.full(len(chunk.ids), i) for i, chunk in enumerate(chunks)])
        slot_mapping = np.concatenate([slots(chunk.block_table, np.arange(chunk.start, chunk.end), pool.block_size)
                                       for chunk in chunks])
        tables = np.zeros((len(chunks), max(len(chunk.block_table) for chunk in chunks)), dtype=np.int64)
        for i, chunk in enumerate(chunks):
            tables[i, :len(chunk.block_table)] = chunk.block_table
        N = len(ids)
        x = p["wte"][ids] + p["wpe"][positions]  # [N, C]
        h, att, y = (np.empty((N, C), dtype=np.float32) for _ in range(3))
        qkv, fc = np.empty((N, 3 * C), dtype=np.float32), np.empty((N, 4 * C), dtype=np.float32)
        normalize_rows(x, blocks[0]["ln_1"]["g"], blocks[0]["ln_1"]["b"], eps, h)
        for layer, blk in enumerate(blocks):
            attn, mlp = blk["attn"], blk["mlp"]
            after = blocks[layer + 1]["ln_1"] if layer + 1 < len(blocks) else p["ln_f"]
            attend(rows_matmul(h, attn["c_attn"]["w"], qkv), attn["c_attn"]["b"], pool.k[layer], pool.v[layer],
                   slot_mapping, positions, seq, tables, pool.block_size, c.n_head, att)
            residual_layer_norm(x, rows_matmul(att, attn["c_proj"]["w"], y), attn["c_proj"]["b"],
                                blk["ln_2"]["g"], blk["ln_2"]["b"], eps, h)
            bias_gelu(rows_matmul(h, mlp["c_fc"]["w"], fc), mlp["c_fc"]["b"])
            residual_layer_norm(x, rows_matmul(fc, mlp["c_proj"]["w"], y), mlp["c_proj"]["b"],
                                after["g"], after["b"], eps, h)
        sampled = [i for i, chunk in enumerate(chunks) if chunk.sampling is not None]
        last_rows = (np.cumsum([len(chunk.ids) for chunk in chunks]) - 1)[sampled]
        logits = rows_matmul(h[last_rows], self.wte_t, np.empty((len(sampled), c.vocab_size), dtype=np.float32))
        return logits, [sample(row, chunks[i].sampling) for row, i in zip(logits, sampled)]


def check_against_the_reference(model, tokens=32):
    """A Rust prompt, prefilled in one chunk, then `tokens` greedy decode steps:
    every step's logits within float32 rounding of the single-sequence
    reference's, and the same tokens."""
    c, greedy, step = model.config, Sampling(0.0, 0, 1.0, 0.5), CompiledStep(model)
    ids = model.tokenizer.encode("fn main() {\n    let names = vec![\"a\", \"b\"];\n    for name in names.iter() {\n")
    pool, cache = model.new_kv_pool(-(-c.n_ctx // 16), 16), KVCache(c)
    table, new, worst = list(range(pool.n_blocks)), ids, 0.0
    for _ in range(tokens):
        logits, (token,) = step(pool, [Chunk(new, cache.length, table, greedy)])
        want = forward_last(model.params, c, new, cache)
        worst = max(worst, float(np.abs(logits[0] - want).max() / np.abs(want).max()))
        assert token == choose(want, greedy).id, "the compiled step chose another token than the reference"
        new = [token]
    assert worst < 1e-4, f"the compiled step's logits are {worst:.2g} (relative) off the reference's"
    coins = np.random.default_rng(3).random(200, dtype=np.float32)
    settings = [Sampling(0.7, 40, 0.9, float(coin)) for coin in coins]
    same = sum(sample(want, s) == choose(want, s).id for s in settings)
    print(f"the compiled step against the reference: {tokens} greedy tokens the same, logits within "
          f"{worst:.1e} of the largest; sampled (0.7, top-k 40, top-p 0.9) from the last logits with "
          f"{len(coins)} coins, {same} picks the same")
    print()


def step_times(model, repeat, position=128, sizes=(1, 8, 16)):
    """The products alone, the engine's NumPy step and the compiled step, for
    n sequences decoding at `position`, taking turns."""
    sampling = Sampling(temperature=0.7, top_k=40, top_p=0.9, coin=0.5)
    blocks = -(-(position + 1) // 16)
    pool = model.new_kv_pool(max(sizes) * blocks, 16)
    chunks = [Chunk([5], position, list(range(i * blocks, (i + 1) * blocks)), sampling) for i in range(max(sizes))]
    for chunk in chunks:  # the positions before the timed one, computed once (the pool starts as NaN)
        model.step_batch(pool, [Chunk(list(range(1, position + 1)), 0, chunk.block_table)])
    weights, compiled = step_weights(model.params), CompiledStep(model)
    print(f"a step of n decoding sequences at position {position}, ms (best of {repeat} rounds, taking turns):")
    print("| n | the products alone | NumPy step | vs products | compiled step | vs products | compiled gains |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for n in sizes:
        rows = {k: np.ones((n, k), dtype=np.float32) for k in {w.shape[0] for w in weights}}
        batch = chunks[:n]
        products, numpy_ms, compiled_ms = best_ms(
            [lambda: [rows_matmul(rows[w.shape[0]], w, np.empty((n, w.shape[1]), np.float32)) for w in weights],
             lambda: model.step_batch(pool, batch), lambda: compiled(pool, batch)], repeat, calls=3)
        print(f"| {n} | {products:.2f} | {numpy_ms:.2f} | {numpy_ms / products:.2f}x | {compiled_ms:.2f} | "
              f"{compiled_ms / products:.2f}x | {numpy_ms / compiled_ms:.2f}x |")
    print()
    attention_in_the_cache(model, pool, chunks[0], repeat)


def attention_in_the_cache(model, pool, chunk, repeat):
    """Layer 0's attention for one row at chunk.start: alone, again and again
    (its keys and values stay in the cache), and each time right after all
    the step's weight matrices went through a product, as between one step's
    layer 0 and the next's."""
    c = model.config
    C = c.n_embd
    qkv = np.random.default_rng(2).standard_normal((1, 3 * C)).astype(np.float32)
    visible = [slots(chunk.block_table, np.arange(chunk.end), pool.block_size)]
    one = np.array([0])
    position, slot = np.array([chunk.start]), visible[0][-1:]
    table = np.asarray([chunk.block_table])
    att, no_bias = np.empty((1, C), dtype=np.float32), np.zeros(3 * C, dtype=np.float32)
    weights = step_weights(model.params)
    rows = {k: np.ones((1, k), dtype=np.float32) for k in (C, 4 * C)}

    def stream_weights():
        for w in weights:
            rows[w.shape[0]] @ w

    def timed(fn, before):
        best = float("inf")
        for _ in range(repeat * 10):
            before()
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        return 1e6 * best

    numpy_attention = lambda: paged_attention(qkv[:, :C], pool.k[0], pool.v[0], [chunk], c.n_head, pool.block_size,
                                              visible)
    compiled_attention = lambda: attend(qkv, no_bias, pool.k[0], pool.v[0], slot, position, one, table,
                                        pool.block_size, c.n_head, att)
    print(f"one row's attention in layer 0 at position {chunk.start}, microseconds (best of {repeat * 10}):")
    print("| | hot in the cache | after the step's weights went through |")
    print("| --- | --- | --- |")
    for name, fn in (("NumPy (paged_attention)", numpy_attention), ("compiled (attend)", compiled_attention)):
        print(f"| {name} | {timed(fn, lambda: None):.1f} | {timed(fn, stream_weights):.1f} |")
    print()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=Path(__file__).resolve().parent.parent / "data" / "claude-rust-small")
    ap.add_argument("--repeat", type=int, default=30, help="rounds of the timings")
    args = ap.parse_args()
    model = load_model(args.model, device="cpu")
    print(f"model {model.name}; NumPy {np.__version__}, Numba {numba.__version__}")
    print()
    check_against_the_reference(model)
    step_times(model, args.repeat)


if __name__ == "__main__":
    main()
