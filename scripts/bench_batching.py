"""Continuous batching on the CPU: the engine's step, and the real server under
N concurrent streaming clients beside the same server at --max-batch 1.

    python scripts/bench_batching.py [--clients 1,4,8,16,32] [--new-tokens 128] [--repeat 30] [--rounds 3]
                                     [--devices cpu,cpu-numba] [--short-tries 20] [--stream-interval-ms MS]
                                     [--in-process-only | --servers-only]

1. In-process. First the engine (cpu-numba) with 8 requests at once, their
   tokens read by 8 threads, one each, a token at a time, and what came
   every STREAM_INTERVAL_S (the server's default) as its routes read them,
   against one thread reading one request after another: what waking a
   reader for every sequence at every step costs, without HTTP.
   Then one step. For one stream: the single-sequence decode step
   (reference/model.py, then sampling), the engine's step of one sequence
   on both CPU backends (reference/paged.py; its small operations compiled,
   backends/numba_cpu.py), and that step's matrix products alone (4 a layer,
   and the LM head): their ratio is what the rest of the step costs.
   For a batch of N decoding sequences: ms per step and tokens/s, computing
   each row by its own matrix-vector product (batch invariant, what the
   engine does) and by one matrix product over all rows (not invariant):
   the difference is what invariance costs; and the compiled step as the
   server runs it (on all cores), on one core, and on one core with the rows
   one at a time instead of in tiles of eight or four. The
   timed steps take turns, best of --repeat rounds, so that a noisy
   neighbour slows them alike. Then one row's attention alone, and its
   sampling, hot in the cache and right after all the step's weights went
   through it, as they do between one step's use of a layer's keys and
   values and the next's, and between a step's products and its sampling.
   And the ceiling: the step's matrix products for 8 rows, one row at a time
   against all rows at once (OpenBLAS, cpu-numba's rows_times, and PyTorch
   if installed): what batching can gain on them on this CPU; and the
   batch sizes at which BLAS's matrix product changes a row's bits.
2. The server (`python -m inference.server`, started here on free ports, so
   it has a process and a GIL of its own), on each of --devices (an entry
   may add options of its own: --devices "cuda,cuda --cuda-graphs off"
   compares the GPU's steps replayed as graphs and launched), twice: at
   the default --max-batch (16) and at --max-batch 1. For each N, N clients
   each stream one request of --new-tokens tokens whose prompt is a real
   line of Rust, all read by one thread (`streams`, an event loop);
   aggregate generated tokens/s, p50/p95 request latency and time to first
   token, the CPU the server and the clients used, and from the server's
   /metrics its engine's mean step and the steps' share of the round's time
   (the rest: between steps, and waiting for requests at a round's start and
   end). The servers take turns, --rounds times (8 / N times as many below
   8 clients); the median round counts, and a ratio between two servers is
   the median of each round's (a slow spell of the machine that lasts a
   round slows both servers in it alike).
3. A short request (16 tokens) sent while 8 long streams run: its time to
   first token, p50 and p95 over --short-tries tries (20), at both settings.
Also, in-process: a 200-token prompt's time to first token the first time
and again, when the prefix cache holds its blocks.
"""

import argparse
import http.client
import json
import os
import platform
import selectors
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numba
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from inference import Settings, load_model
from inference.backends.numba_cpu import PANEL, NumbaCpuModel, attend, choose_rows, product
from inference.engine import Engine
from inference.reference import paged
from inference.reference.model import KVCache, forward_last
from inference.reference.paged import Chunk
from inference.reference.sampling import Sampling, choose
from inference.server import STREAM_INTERVAL_S

ROOT = Path(__file__).resolve().parent.parent
SAMPLING = Sampling(temperature=0.7, top_k=40, top_p=0.9, coin=0.5)


def best_ms(fns, rounds, calls=10):
    """ms per call of each function: the best of `rounds` rounds of `calls`
    calls, the functions taking turns, so that a noisy neighbour slows them
    alike and the ratios hold."""
    best = [float("inf")] * len(fns)
    for fn in fns:
        fn()
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            best[i] = min(best[i], (time.perf_counter() - t0) / calls)
    return [1000 * b for b in best]


def step_costs(model, compiled, repeat, position=128):
    params, config = model.params, model.config
    cache = KVCache(config)
    forward_last(params, config, list(range(1, position + 1)), cache)

    def reference_step():
        cache.length = position
        choose(forward_last(params, config, [5], cache), SAMPLING)

    pool = model.new_kv_pool(64 * 17, 16)
    blocks = -(-(position + 1) // 16)

    def chunks(n):
        return [Chunk([5], position, list(range(i * blocks, (i + 1) * blocks)), SAMPLING) for i in range(n)]

    for chunk in chunks(16):  # the positions before the timed one, computed once (the pool starts as NaN)
        model.step_batch(pool, [Chunk(list(range(1, position + 1)), 0, chunk.block_table)])

    one = chunks(1)
    rng = np.random.default_rng(0)
    weights = step_weights(params)
    rows = {n: rng.standard_normal((1, n)).astype(np.float32) for n in {w.shape[0] for w in weights}}

    def matmuls_alone():  # one row through every weight matrix, as a decode step does
        for w in weights:
            rows[w.shape[0]] @ w

    compiled_weights = compiled_step_weights(compiled)
    outs = [np.empty((1, n_out), dtype=np.float32) for _, _, n_out in compiled_weights]

    def compiled_products_alone():  # the same through cpu-numba's own product, as its step does them
        for (panels, n_in, _), out in zip(compiled_weights, outs):
            product(rows[n_in], panels, out, compiled.tile_rows, compiled.on_all_cores)

    ref_ms, engine_ms, mm_ms = best_ms([reference_step, lambda: model.step_batch(pool, one), matmuls_alone], repeat)
    # cpu-numba's on their own: right after a step on BLAS's two threads, they still spin-wait on the cores
    # that cpu-numba's products share; a server under steady load does not switch like that.
    compiled_ms, own_ms = best_ms([lambda: compiled.step_batch(pool, one), compiled_products_alone], repeat)
    print(f"one stream, a decode step at position {position} (best of {repeat} rounds):")
    print(f"| step | ms | its {len(weights)} products alone ms | step / products |")
    print("| --- | --- | --- | --- |")
    for name, step_ms, products_ms in [("single-sequence step (model.py + sample)", ref_ms, mm_ms),
                                       ("engine step of one sequence, cpu (paged.py)", engine_ms, mm_ms),
                                       ("engine step of one sequence, cpu-numba (numba_cpu.py)", compiled_ms, own_ms)]:
        print(f"| {name} | {step_ms:.3f} | {products_ms:.3f} | {step_ms / products_ms:.2f}x |")
    print(f"(the products alone: NumPy's matmul, and cpu-numba's on all its cores; cpu-numba's step "
          f"{engine_ms / compiled_ms:.2f}x faster than cpu's)")
    logits = compiled.batch_logits(pool, one)[0]  # [V]
    numpy_ms, compiled_ms = best_ms([lambda: choose(logits, SAMPLING),
                                     lambda: choose_rows(logits[None].copy(), [SAMPLING])], repeat, calls=100)
    print(f"(of which sampling one row of {len(logits):,} logits at temperature {SAMPLING.temperature}, top-k "
          f"{SAMPLING.top_k}, top-p {SAMPLING.top_p}: {1000 * numpy_ms:.1f} us in NumPy, {1000 * compiled_ms:.1f} us "
          "compiled)")
    print()
    print(f"a step of N decoding sequences at position {position}:")
    print("| N | row by row (invariant) ms | tok/s | one matmul over the rows ms | tok/s | invariance costs "
          "| cpu-numba ms | tok/s | on one core ms | cores gain | on one core, rows one at a time ms | tiles gain |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    row_linear = paged.row_linear

    def one_matmul_step(batch):  # the same step with x @ w + b over all rows in each linear layer
        paged.row_linear = lambda x, w, b: x @ w + b
        try:
            model.step_batch(pool, batch)
        finally:
            paged.row_linear = row_linear

    def compiled_step(batch, **settings):  # cpu-numba's step with some of its settings changed for it
        with compiled.loops(**settings):
            compiled.step_batch(pool, batch)

    for n in (1, 4, 8, 16):
        batch = chunks(n)
        invariant, batched = best_ms([lambda: model.step_batch(pool, batch), lambda: one_matmul_step(batch)], repeat,
                                     calls=3)
        # cpu-numba's on their own, as above
        fast, one_core, one_by_one = best_ms([lambda: compiled.step_batch(pool, batch),
                                              lambda: compiled_step(batch, on_all_cores=False),
                                              lambda: compiled_step(batch, on_all_cores=False, tile_rows=1)],
                                             repeat, calls=3)
        print(f"| {n} | {invariant:.2f} | {1000 * n / invariant:,.0f} | {batched:.2f} | {1000 * n / batched:,.0f} | "
              f"{invariant / batched:.2f}x | {fast:.2f} | {1000 * n / fast:,.0f} | {one_core:.2f} | "
              f"{one_core / fast:.2f}x | {one_by_one:.2f} | {one_by_one / one_core:.2f}x |")
    print()
    in_the_cache_and_after(model, pool, one[0], logits, repeat)


def in_the_cache_and_after(model, pool, chunk, logits, repeat):
    """Layer 0's attention for one row at chunk.start, and sampling that row's
    logits [V], on both CPU backends: called again and again (what they read
    stays in the cache), and each time right after all the step's weights went
    through a matrix product, as between one step's layer 0 and the next's,
    and between a step's products and its sampling (which then finds its code,
    its data and Python's own pushed out of the core's caches)."""
    c, C = model.config, model.config.n_embd
    qkv = np.random.default_rng(2).standard_normal((1, 3 * C)).astype(np.float32)
    visible = [paged.slots(chunk.block_table, np.arange(chunk.end), pool.block_size)]
    _, position, seq, slot, table = paged.batch_rows([chunk], pool.block_size)
    att, no_bias = np.empty((1, C), dtype=np.float32), np.zeros(3 * C, dtype=np.float32)
    weights = step_weights(model.params)
    rows = {k: np.ones((1, k), dtype=np.float32) for k in {w.shape[0] for w in weights}}

    def stream_weights():
        for w in weights:
            rows[w.shape[0]] @ w

    def best_us(fn, before):
        best = float("inf")
        for _ in range(10 * repeat):
            before()
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        return 1e6 * best

    kernels = {"attention, cpu (paged_attention)": lambda: paged.paged_attention(
                   qkv[:, :C], pool.k[0], pool.v[0], [chunk], c.n_head, pool.block_size, visible),
               "attention, cpu-numba (attend)": lambda: attend(qkv, no_bias, pool.k[0], pool.v[0], slot, position,
                                                               seq, table, pool.block_size, c.n_head, att),
               "sampling, cpu (choose)": lambda: choose(logits, SAMPLING),
               "sampling, cpu-numba (choose_rows)": lambda: choose_rows(logits[None], [SAMPLING])}
    print(f"one row's attention in layer 0 at position {chunk.start}, and its sampling, microseconds "
          f"(best of {10 * repeat}):")
    print("| what | hot in the cache | after the step's weights went through |")
    print("| --- | --- | --- |")
    for name, fn in kernels.items():
        print(f"| {name} | {best_us(fn, lambda: None):.1f} | {best_us(fn, stream_weights):.1f} |")
    print()


def step_weights(params):  # the weight matrices of a decode step (4 a layer, and the LM head) as [n_in, n_out]
    layers = [p[a][b]["w"] for p in params["blocks"]
              for a, b in (("attn", "c_attn"), ("attn", "c_proj"), ("mlp", "c_fc"), ("mlp", "c_proj"))]
    return layers + [params["wte"].T]


def compiled_step_weights(compiled):  # step_weights as cpu-numba holds them: (panels, n_in, n_out) each
    w = compiled.weights
    matrices = [panels[layer] for layer in range(compiled.config.n_layer)
                for panels in (w.c_attn_w, w.attn_proj_w, w.c_fc_w, w.mlp_proj_w)] + [w.lm_head]
    return [(panels, panels.shape[1] // PANEL, PANEL * panels.shape[0]) for panels in matrices]


def matmul_ceiling(model, compiled, repeat, n=8):
    """The most batching can gain on a step's matmuls here: n rows through
    the step's weight matrices one row at a time (matrix-vector products, what
    an unbatched server does) against all n rows at once (one matrix
    product per weight, invariant or not), by OpenBLAS and, if installed,
    by PyTorch. Where the weights come from memory, as on a GPU, the n rows
    cost little more than one; where one row already keeps the CPU's
    arithmetic busy, n rows cost nearly n times one."""
    weights = step_weights(model.params)
    rows = np.random.default_rng(0).standard_normal((n, weights[0].shape[0])).astype(np.float32)
    inputs = {w.shape[0]: np.ascontiguousarray(np.resize(rows, (n, w.shape[0]))) for w in weights}
    one_at_a_time = [lambda: [inputs[w.shape[0]][i:i + 1] @ w for w in weights for i in range(n)]]
    at_once = [lambda: [inputs[w.shape[0]] @ w for w in weights]]
    names = ["NumPy (OpenBLAS)"]
    compiled_weights = compiled_step_weights(compiled)
    outs = [np.empty((n, n_out), dtype=np.float32) for _, _, n_out in compiled_weights]
    products = {"1 core": False}
    if compiled.on_all_cores:
        products[f"{compiled.cores} cores"] = True
    for cores, all_cores in products.items():
        one_at_a_time.append(lambda all_cores=all_cores: [
            product(inputs[n_in][i:i + 1], panels, out[i:i + 1], compiled.tile_rows, all_cores)
            for (panels, n_in, _), out in zip(compiled_weights, outs) for i in range(n)])
        at_once.append(lambda all_cores=all_cores: [product(inputs[n_in], panels, out, compiled.tile_rows, all_cores)
                                                    for (panels, n_in, _), out in zip(compiled_weights, outs)])
        names.append(f"cpu-numba's products, {cores}")
    try:
        import torch
        t_weights = [torch.from_numpy(np.ascontiguousarray(w)) for w in weights]
        t_inputs = {k: torch.from_numpy(v) for k, v in inputs.items()}
        one_at_a_time.append(lambda: [t_inputs[w.shape[0]][i:i + 1] @ w for w in t_weights for i in range(n)])
        at_once.append(lambda: [t_inputs[w.shape[0]] @ w for w in t_weights])
        names.append(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads")
    except ImportError:
        pass
    macs = n * sum(w.size for w in weights)
    print(f"the step's {len(weights)} matmuls for {n} rows: one row at a time against all {n} at once "
          f"(best of {repeat} rounds):")
    print("| library | one at a time ms | GMAC/s | all at once ms | GMAC/s | at once gains |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, single, batched in zip(names, one_at_a_time, at_once):
        single_ms, batched_ms = best_ms([single, batched], repeat, calls=3)
        print(f"| {name} | {single_ms:.2f} | {macs / single_ms / 1e6:.1f} | {batched_ms:.2f} | "
              f"{macs / batched_ms / 1e6:.1f} | {single_ms / batched_ms:.2f}x |")
    print()


def blas_row_counts(model, most=16):
    """For each distinct weight shape: the batch sizes (rows at once) at which
    one matrix product gives a row other bits than a product over two rows
    does. Any entry means BLAS's matrix product is not batch invariant here,
    whatever a matrix-vector product (1 row) does."""
    rows = np.random.default_rng(1).standard_normal((most, max(w.shape[0] for w in step_weights(model.params))))
    rows = rows.astype(np.float32)
    print(f"OpenBLAS matrix products of 2..{most} rows: where a row's result differs from the same row's "
          "in a product of 2:")
    print("| weight [in, out] | rows at once where it differs |")
    print("| --- | --- |")
    for shape, w in {w.shape: w for w in step_weights(model.params)}.items():
        x = rows[:, :shape[0]]
        pairs = np.concatenate([x[i:i + 2] @ w for i in range(0, most, 2)])  # each row in a product of 2
        differ = [n for n in range(3, most + 1) if not np.array_equal(x[:n] @ w, pairs[:n])]
        print(f"| {list(shape)} | {', '.join(map(str, differ)) or 'none'} |")
    print()


def prefix_cache_ttft(model, tries=5, length=200):
    """Time to first token of a prompt sent once (nothing cached), then again
    (all its full blocks cached): median of `tries` different prompts."""
    ids = model.tokenizer.encode((ROOT / "tests" / "data" / "rust_sample.rs").read_text())
    engine = Engine(model)
    cold, warm = [], []
    try:
        for i in range(tries):
            prompt = ids[i * length:(i + 1) * length]
            for times in (cold, warm):
                t0 = time.perf_counter()
                request = engine.submit(prompt, Settings(max_new_tokens=1))
                list(request.stream())
                times.append(time.perf_counter() - t0)
    finally:
        engine.stop()
    print(f"prefix cache: a {length}-token prompt, time to first token, median of {tries} prompts:")
    print("| sent | ms | positions cached |")
    print("| --- | --- | --- |")
    print(f"| the first time | {1000 * statistics.median(cold):.1f} | 0 |")
    print(f"| again | {1000 * statistics.median(warm):.1f} | {request.cached_tokens} |")
    print()


def readers_cost(compiled, rounds=4, n=8, new_tokens=128):
    """The engine in-process (cpu-numba), n requests at once, their tokens read
    by n threads, one each: a token at a time (every step wakes n threads),
    or what came, every STREAM_INTERVAL_S, as the server's routes read them;
    against one thread reading the requests one after another (the tokens
    wait in their queues; no thread but one wakes). Taking turns; the median
    round of each: tokens/s and the engine's mean step of n."""
    prompts = [compiled.tokenizer.encode(line) for line in rust_lines()[:n]]
    engine, steps = Engine(compiled), []
    engine.on_step = lambda seconds, sequences: steps.append(seconds) if sequences == n else None

    def read(request, interval=0.0):
        for _ in request.bursts(interval):
            pass

    def by_threads(requests, interval=0.0):
        threads = [threading.Thread(target=read, args=(r, interval)) for r in requests]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def one_after_another(requests):
        for r in requests:
            read(r)

    ways = {f"{n} threads, one each, a token at a time": (by_threads, []),
            f"{n} threads, one each, what came every {1000 * STREAM_INTERVAL_S:g} ms (as the server's routes)":
                (lambda requests: by_threads(requests, STREAM_INTERVAL_S), []),
            "one thread, one request after another": (one_after_another, [])}
    try:
        for i in range(rounds):
            for read_all, runs in ways.values():
                steps.clear()
                t0 = time.perf_counter()
                requests = [engine.submit(prompt, Settings(max_new_tokens=new_tokens, seed=i)) for prompt in prompts]
                read_all(requests)
                seconds = time.perf_counter() - t0
                generated = sum(len(r.tokens) - r.prompt_length for r in requests)  # eos may end one early
                runs.append((generated / seconds, 1000 * statistics.mean(steps)))
    finally:
        engine.stop()
    print(f"the engine in-process (cpu-numba), {n} requests of up to {new_tokens} tokens at once, "
          f"the median of {rounds} rounds:")
    print(f"| their tokens read by | tok/s | mean step of {n} ms |")
    print("| --- | --- | --- |")
    for label, (_, runs) in ways.items():
        rate, step_ms = sorted(runs)[len(runs) // 2]
        print(f"| {label} | {rate:,.0f} | {step_ms:.2f} |")
    print()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, model_dir, max_batch, device="cpu", env=None, options=()):
        self.port = free_port()
        env = {**{k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}, **(env or {})}
        self.proc = subprocess.Popen([sys.executable, "-m", "inference.server", "--model", str(model_dir),
                                      "--device", device, "--port", str(self.port), "--max-batch", str(max_batch),
                                      "--max-pending", "64", "--log-level", "WARNING", *options], env=env)
        for _ in range(600):  # until /health says ok: the model loaded (cpu-numba's first start compiles)
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("the server did not start")

    def cpu_seconds(self):  # the server process's CPU time so far, all its threads (Linux's /proc; else NaN)
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def steps(self):  # (the engine's steps so far, their seconds in all), from /metrics
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request("GET", "/metrics")
        samples = {s.name: s.value for family in text_string_to_metric_families(conn.getresponse().read().decode())
                   for s in family.samples}
        return samples["inference:engine_step_seconds_count"], samples["inference:engine_step_seconds_sum"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def stream(port, prompt, new_tokens, seed):
    """(tokens, seconds to the first token, seconds in all) for one streamed request.
    The client reads whatever bytes have come and counts the events in them
    (EventCount): a client on another machine would cost the server's cores
    nothing, and this one shares them."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    t0 = time.perf_counter()
    conn.request("POST", "/generate_stream", json.dumps({"prompt": prompt, "max_new_tokens": new_tokens,
                                                         "seed": seed}), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.status == 200, resp.read()
    first, tokens = None, 0
    for tokens in events_so_far(iter(lambda: resp.read1(65536), b"")):
        if first is None and tokens:
            first = time.perf_counter() - t0
    conn.close()
    return tokens, first, time.perf_counter() - t0


def streams(port, prompts, new_tokens, seeds):
    """[(tokens, seconds to the first token, seconds in all)] for streamed
    requests sent at once, all read by this one thread as their bytes come,
    as a load generator's event loop reads them (wrk's, k6's): a thread per
    client woke once for each write of its stream, on the cores the server
    runs on. Counted as stream() counts, on the raw bytes: a chunk's size
    line ends in a newline, as an event does."""
    selector, t0 = selectors.DefaultSelector(), time.perf_counter()
    for i, (prompt, seed) in enumerate(zip(prompts, seeds)):
        body = json.dumps({"prompt": prompt, "max_new_tokens": new_tokens, "seed": seed}).encode()
        sock = socket.create_connection(("127.0.0.1", port), timeout=300)
        sock.sendall(b"POST /generate_stream HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                     b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        selector.register(sock, selectors.EVENT_READ, {"i": i, "count": EventCount(), "first": None, "head": b""})
    results = [None] * len(prompts)
    while selector.get_map():
        for key, _ in selector.select():
            sock, state, data = key.fileobj, key.data, key.fileobj.recv(65536)
            if len(state["head"]) < 13:  # the status line's start
                state["head"] += data[:13]
                assert len(state["head"]) < 13 or state["head"].startswith(b"HTTP/1.1 200 "), state["head"]
            if not data:
                selector.unregister(sock)
                sock.close()
                results[state["i"]] = (state["count"].count, state["first"], time.perf_counter() - t0)
            elif state["count"].feed(data) and state["first"] is None:
                state["first"] = time.perf_counter() - t0
    return results


class EventCount:
    """An event stream's token events, counted from its bytes as they come,
    parsing no lines: a token's event line starts with "data: {" (the last
    event's, "[DONE]", does not), and JSON holds no raw newline."""
    MARKER = b"\ndata: {"

    def __init__(self):
        self.count, self.tail = 0, b"\n"  # the body starts with an event: as if after a newline

    def feed(self, data: bytes) -> int:  # -> the events so far
        seen = self.tail + data
        self.count += seen.count(self.MARKER)
        self.tail = seen[1 - len(self.MARKER):]  # shorter than a marker: one cut between reads counts once, when whole
        return self.count


def events_so_far(reads):  # an event stream's bytes, as they come -> its token events so far, after each read
    count = EventCount()
    for data in reads:
        yield count.feed(data)


def percentile(values, q):
    return float(np.percentile(values, q)) * 1000


def rust_lines():
    lines = [line.strip() for line in (ROOT / "tests" / "data" / "rust_sample.rs").read_text().splitlines()]
    return [line for line in lines if len(line) > 20][:64]


def clients_table(model_dir, devices, client_counts, new_tokens, rounds, short_tries, options=()):
    """All the servers run at once and take turns, round after round, so that a
    noisy neighbour slows them alike; the median round of each is reported.
    devices: each a --device, and after it any options of that server's own
    ("cuda --cuda-graphs off"); options: more options, the same for all."""
    prompts = rust_lines()
    servers = {(device, max_batch): server_for(model_dir, max_batch, device, options)
               for device in devices for max_batch in (16, 1)}
    rows, rounds_of = {}, {}  # (server, N) -> its median round; its tokens/s in every round, in order
    try:
        for n in client_counts:
            runs = {key: [] for key in servers}
            for _ in range(rounds * max(1, 8 // n)):  # more rounds for few clients: a round is short and noisy
                for key, server in servers.items():
                    # OpenBLAS's threads in the server whose turn just ended spin on the cores for a while;
                    # without a pause the next server in turn ran 0.66x as fast at one client.
                    time.sleep(0.5)
                    steps0, step_s0 = server.steps()
                    t0, cpu0, clients_cpu0 = time.perf_counter(), server.cpu_seconds(), time.process_time()
                    results = streams(server.port, [prompts[i % len(prompts)] for i in range(n)], new_tokens, range(n))
                    wall = time.perf_counter() - t0
                    cores = (server.cpu_seconds() - cpu0) / wall
                    clients_cores = (time.process_time() - clients_cpu0) / wall  # this process: the clients' thread
                    steps, step_s = (after - before for after, before in zip(server.steps(), (steps0, step_s0)))
                    runs[key].append((sum(r[0] for r in results) / wall, [r[2] for r in results],
                                      [r[1] for r in results], cores, clients_cores, 1000 * step_s / steps,
                                      step_s / wall))
            for key, results in runs.items():
                rows[key, n] = sorted(results, key=lambda r: r[0])[len(results) // 2]
                rounds_of[key, n] = [r[0] for r in results]
        for key, server in servers.items():
            rows[key, "short"] = short_during_long(server.port, prompts, short_tries)
    finally:
        for server in servers.values():
            server.stop()

    def ratio(server, baseline, n):  # tokens/s: the median of each round's ratio to the baseline's next to it
        return statistics.median(a / b for a, b in zip(rounds_of[server, n], rounds_of[baseline, n]))

    print(f"the server{' with ' + ' '.join(options) if options else ''}, N clients streaming {new_tokens} new "
          f"tokens each at once (prompts: lines of Rust); the median of {rounds} rounds ({rounds} x 8 / N below 8 "
          "clients); the ratios: the median of each round's against the other server's in the same round:")
    print("| clients | --device | --max-batch | tok/s | p50 latency ms | p95 latency ms | p50 TTFT ms | p95 TTFT ms "
          f"| server's CPU, cores | clients' CPU, cores | engine's step ms | steps' share of the time "
          f"| tok/s vs --max-batch 1 "
          f"| tok/s vs {devices[0]} |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for n in client_counts:
        for device, max_batch in servers:
            rate, latency, ttft, cores, clients_cores, step_ms, busy = rows[(device, max_batch), n]
            print(f"| {n} | {device} | {max_batch} | {rate:,.0f} | {percentile(latency, 50):.0f} | "
                  f"{percentile(latency, 95):.0f} | {percentile(ttft, 50):.1f} | {percentile(ttft, 95):.1f} | "
                  f"{cores:.2f} | {clients_cores:.2f} | {step_ms:.2f} | {busy:.0%} | "
                  f"{ratio((device, max_batch), (device, 1), n):.2f}x | "
                  f"{ratio((device, max_batch), (devices[0], max_batch), n):.2f}x |")
    print()
    print(f"a short request (16 tokens) while 8 long streams run, {short_tries} tries:")
    print("| --device | --max-batch | p50 TTFT ms | p95 TTFT ms |")
    print("| --- | --- | --- | --- |")
    for device, max_batch in servers:
        ttft = rows[(device, max_batch), "short"]
        print(f"| {device} | {max_batch} | {percentile(ttft, 50):.1f} | {percentile(ttft, 95):.1f} |")


def server_for(model_dir, max_batch, entry, options=()):  # entry: a --device, then options of that server's own
    device, *own = entry.split()
    return Server(model_dir, max_batch, device, options=(*options, *own))


def short_during_long(port, prompts, tries):
    stop = threading.Event()

    def long_stream(i):
        while not stop.is_set():
            stream(port, prompts[i], 200, i)
    threads = [threading.Thread(target=long_stream, args=(i,), daemon=True) for i in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    ttft = []
    for i in range(tries):
        ttft.append(stream(port, prompts[8 + i % 8], 16, 1000 + i)[1])
        time.sleep(0.05)
    stop.set()
    for t in threads:
        t.join()
    return ttft


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=ROOT / "data" / "claude-rust-small")
    ap.add_argument("--clients", default="1,4,8,16,32")
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=30, help="rounds of the step timings")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of each server measurement")
    ap.add_argument("--devices", default="cpu,cpu-numba",
                    help="the servers' --device, each at --max-batch 16 and 1; an entry may add options of its own "
                         "(\"cuda,cuda --cuda-graphs off\")")
    ap.add_argument("--in-process-only", action="store_true", help="the step tables, not the servers")
    ap.add_argument("--short-tries", type=int, default=20,
                    help="short requests sent while 8 long streams run (at --max-batch 1 each waits for them)")
    ap.add_argument("--servers-only", action="store_true", help="the servers, not the step tables")
    ap.add_argument("--stream-interval-ms", help="the servers' --stream-interval-ms (default: theirs)")
    args = ap.parse_args()
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    name = next((line.split(":", 1)[1].strip() for line in cpu.splitlines() if line.startswith("Model name")), "?")
    print(f"model {args.model.name}; {name}, {os.cpu_count()} cores, {platform.machine()}, Python "
          f"{platform.python_version()}, NumPy {np.__version__}, Numba {numba.__version__}")
    if not args.servers_only:
        step_tables(args)
    if not args.in_process_only:
        options = ("--stream-interval-ms", args.stream_interval_ms) if args.stream_interval_ms is not None else ()
        clients_table(args.model, args.devices.split(","), [int(n) for n in args.clients.split(",")],
                      args.new_tokens, args.rounds, args.short_tries, options)


def step_tables(args):
    model = load_model(args.model, device="cpu")
    # the same weight arrays where it can (cpu-numba holds its layers' weights transposed): a second copy
    # of each would push the first out of the cache as they take turns
    compiled = NumbaCpuModel(model.config, model.params, model.tokenizer, model.name)
    print(f"cpu-numba: products {compiled.tile_rows} rows at a time; "
          f"on all {compiled.cores} cores: {'yes' if compiled.on_all_cores else 'no'}")
    print()
    # First, while no thread of this process has run cpu-numba's parallel loops but the engine's: OpenMP
    # keeps a team for each thread that started parallel work, and more teams than cores sleep sooner
    # (NumbaCpuModel.all_cores_serve): after the step tables, the engine's steps here took 2x as long.
    readers_cost(compiled)
    step_costs(model, compiled, args.repeat)
    matmul_ceiling(model, compiled, args.repeat)
    blas_row_counts(model)
    prefix_cache_ttft(model)


if __name__ == "__main__":
    main()
