"""Kernel timings on a GPU, beside PyTorch and the device's copy bandwidth, in one run.

    pip install -e .[cuda,train] transformers
    python scripts/bench_kernels.py [--model data/claude-rust-small] [--repeat 50]

Each kernel version is timed with CUDA events after a warm-up launch
(median of `--repeat`), at GPT-2-small shapes and larger, and printed as
ms, GB/s (memory-bound kernels: bytes that must move at least once) or
TFLOP/s (matmul, attention), beside the same operation in PyTorch (float32,
TF32 off) and beside a device-to-device copy of the same bytes. Then
end-to-end greedy decode tokens/s on the same weights: the CUDA backend,
the NumPy backend, and PyTorch (Hugging Face transformers, eager); the
kernel launches in a decode step beside what launching costs the host,
and what replaying the step's kernels as one CUDA graph saves; and the
engine's aggregate tokens/s with several requests at once.

    NUMBA_ENABLE_CUDASIM=1 python scripts/bench_kernels.py --smoke

runs every step at tiny sizes under Numba's CUDA simulator (PyTorch on the
CPU) to check the script itself: its timings mean nothing.
"""

import argparse
import platform
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from bench_generate import torch_loop

ROOT = Path(__file__).resolve().parent.parent

SHAPES = {  # full run / --smoke
    "rows": ([(1024, 768), (8192, 1600), (65536, 1024)], [(5, 40)]),  # N x C
    "linear": ([(1, 768, 3072), (1, 768, 50257), (1024, 768, 3072), (4096, 1024, 4096)],
               [(1, 24, 40), (20, 24, 40)]),  # N x K x M
    "attention": ([(1, 1024, 768, 12), (1024, 1024, 768, 12)], [(1, 9, 16, 2), (6, 6, 16, 2)]),  # T, S, C, H
    "vocab": ([50257], [300]),
    "paged": ([(8, 1024, 768, 12, 16), (64, 512, 768, 12, 16)], [(3, 9, 16, 2, 4)]),  # sequences N, S, C, H, block
    "batch": ([8], [2]),  # engine requests decoding together
    "decode": ([(8, None)], [(2, 2)]),  # prompt tokens, new tokens (None: fill the context)
}


class Timer:
    """Median milliseconds of `repeat` calls after one warm-up call (which also compiles)."""

    def __init__(self, repeat, torch, torch_device):
        self.repeat, self.torch, self.torch_device = repeat, torch, torch_device

    def ours(self, fn):
        from numba import cuda
        fn()
        times = []
        for _ in range(self.repeat):
            start, end = cuda.event(), cuda.event()
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        return float(np.median(times))

    def pytorch(self, fn):
        torch = self.torch
        fn()
        times = []
        for _ in range(self.repeat):
            if self.torch_device.type == "cuda":
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end))
            else:
                t0 = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t0) * 1e3)
        return float(np.median(times))


def row(name, shape, ms, work, unit, torch_ms, copy_ms):
    if ms <= 0:  # the simulator's events record no time
        print(f"| {name} | {shape} | - | - | - | - | - |")
        return
    rate = work / (ms * 1e-3) / (1e12 if unit == "TFLOP/s" else 1e9)
    torch_cell, vs_torch = (f"{torch_ms:.4f}", f"{ms / torch_ms:.2f}x") if torch_ms else ("-", "-")
    vs_copy = f"{ms / copy_ms:.2f}x" if copy_ms and copy_ms > 0 else "-"
    print(f"| {name} | {shape} | {ms:.4f} | {rate:.1f} {unit} | {torch_cell} | {vs_torch} | {vs_copy} |")


def copy_ms(timer, n_bytes):
    """A device-to-device copy of n_bytes: the speed limit of a kernel that reads and writes them once."""
    from numba import cuda
    src = cuda.device_array(n_bytes // 4, dtype=np.float32)
    dst = cuda.device_array(n_bytes // 4, dtype=np.float32)
    return timer.ours(lambda: dst.copy_to_device(src))


def bench_rows(timer, shapes, rng):  # layer norm, GELU, softmax: memory-bound, one read and one write
    from numba import cuda
    F = timer.torch.nn.functional
    from inference.kernels import gelu, layernorm, softmax
    for N, C in shapes:
        x = rng.standard_normal((N, C)).astype(np.float32)
        g, b = np.ones(C, np.float32), np.zeros(C, np.float32)
        dx, dg, db, out = cuda.to_device(x), cuda.to_device(g), cuda.to_device(b), cuda.device_array((N, C), np.float32)
        tx, tg, tb = (timer.torch.from_numpy(a).to(timer.torch_device) for a in (x, g, b))
        moved, copy = 2 * x.nbytes, copy_ms(timer, x.nbytes)
        t = timer.pytorch(lambda: F.layer_norm(tx, (C,), tg, tb, 1e-5))
        for v in layernorm.VERSIONS:
            ms = timer.ours(lambda: layernorm.layer_norm(dx, dg, db, 1e-5, out=out, version=v))
            row(f"layer_norm v{v}", f"{N}x{C}", ms, moved, "GB/s", t, copy)
        t = timer.pytorch(lambda: F.gelu(tx, approximate="tanh"))
        for v in gelu.VERSIONS:
            ms = timer.ours(lambda: gelu.gelu(dx, out=out, version=v))
            row(f"gelu v{v}", f"{N}x{C}", ms, moved, "GB/s", t, copy)
        t = timer.pytorch(lambda: timer.torch.softmax(tx, dim=-1))
        for v in softmax.VERSIONS:
            ms = timer.ours(lambda: softmax.softmax(dx, out=out, version=v))
            row(f"softmax v{v}", f"{N}x{C}", ms, moved, "GB/s", t, copy)


def bench_linear(timer, shapes, rng):
    from numba import cuda
    from inference.kernels import matmul
    for N, K, M in shapes:
        x = rng.standard_normal((N, K)).astype(np.float32)
        w = rng.standard_normal((K, M)).astype(np.float32)
        b = rng.standard_normal(M).astype(np.float32)
        dx, dw, db, out = cuda.to_device(x), cuda.to_device(w), cuda.to_device(b), cuda.device_array((N, M), np.float32)
        tx, tw, tb = (timer.torch.from_numpy(a).to(timer.torch_device) for a in (x, w, b))
        t = timer.pytorch(lambda: timer.torch.addmm(tb, tx, tw))
        for v in matmul.VERSIONS:
            if v == 1 and N > 1024:
                continue  # seconds per launch: the point is made at smaller sizes
            ms = timer.ours(lambda: matmul.linear(dx, dw, db, out=out, version=v))
            row(f"linear v{v}", f"{N}x{K}x{M}", ms, 2 * N * K * M, "TFLOP/s", t, None)


def bench_attention(timer, shapes, rng):
    from numba import cuda
    F = timer.torch.nn.functional
    from inference.kernels import attention
    for T, S, C, H in shapes:
        q, k, v = (rng.standard_normal((n, C)).astype(np.float32) for n in (T, S, S))
        dq, dk, dv, out = cuda.to_device(q), cuda.to_device(k), cuda.to_device(v), cuda.device_array((T, C), np.float32)
        D = C // H
        tq, tk, tv = (timer.torch.from_numpy(a).to(timer.torch_device).view(-1, H, D).transpose(0, 1)
                      for a in (q, k, v))
        # T new queries at the end of S positions: PyTorch's is_causal means T == S, so prompts use T == S.
        t = timer.pytorch(lambda: F.scaled_dot_product_attention(tq, tk, tv, is_causal=T > 1))
        pairs = T * S if T == 1 else T * (T + 1) / 2  # (query, key) pairs the causal mask keeps
        for version in attention.VERSIONS:
            ms = timer.ours(lambda: attention.attention(dq, dk, dv, H, out=out, version=version))
            row(f"attention v{version}", f"T={T} S={S} C={C} H={H}", ms, 4 * pairs * D * H, "TFLOP/s", t, None)


def bench_sample(timer, V, rng):
    from numba import cuda
    from inference.kernels.sampling import Sampler
    torch = timer.torch
    logits = (rng.standard_normal(V) * 3).astype(np.float32)
    dl, tl, sampler = cuda.to_device(logits), torch.from_numpy(logits).to(timer.torch_device), Sampler(V)

    def torch_sample():  # the usual PyTorch recipe: softmax, top-k, cumulative sum, multinomial
        top, idx = torch.softmax(tl / 0.7, dim=-1).topk(min(40, V))
        keep = top.cumsum(0) - top < 0.9
        return idx[torch.multinomial(top * keep, 1)]
    t = timer.pytorch(torch_sample)
    ms = timer.ours(lambda: sampler.launch(dl, 0.7, 40, 0.9, 0.5))
    row("sample (T 0.7, top-k 40, top-p 0.9)", f"V={V}", ms, 4 * V, "GB/s", t, None)


def bench_paged(timer, shapes, V, rng):
    """The engine's decode step on the GPU: N sequences, one query row each, keys
    read through scattered block tables; beside PyTorch's attention over the same
    keys laid out contiguously. Then N rows sampled by one launch (a block each)."""
    from numba import cuda
    from inference.kernels import paged
    from inference.kernels.common import MAX_BLOCK
    from inference.kernels.sampling import BatchSampler, sample_batch_kernel
    from inference.reference.sampling import Sampling
    F, torch = timer.torch.nn.functional, timer.torch
    for N, S, C, H, B in shapes:
        D, blocks = C // H, -(-S // B)
        k, v = (rng.standard_normal((N * blocks * B, C)).astype(np.float32) for _ in range(2))
        tables = rng.permutation(N * blocks).astype(np.int32).reshape(N, blocks)  # blocks all over the pool
        q = rng.standard_normal((N, C)).astype(np.float32)
        dq, dk, dv, dt = cuda.to_device(q), cuda.to_device(k), cuda.to_device(v), cuda.to_device(tables)
        positions, seq = cuda.to_device(np.full(N, S - 1, np.int32)), cuda.to_device(np.arange(N, dtype=np.int32))
        out = cuda.device_array((N, C), np.float32)
        slots = (tables[:, :, None] * B + np.arange(B)).reshape(N, -1)[:, :S]  # [N, S] each sequence's keys, in order
        tq = torch.from_numpy(q).to(timer.torch_device).view(N, H, 1, D)
        tk, tv = (torch.from_numpy(a[slots]).to(timer.torch_device).view(N, S, H, D).transpose(1, 2) for a in (k, v))
        t = timer.pytorch(lambda: F.scaled_dot_product_attention(tq, tk, tv))
        ms = timer.ours(lambda: paged.paged_attention(dq, dk, dv, positions, seq, dt, B, H, out))
        row("paged_attention (decode rows)", f"N={N} S={S} C={C} H={H} B={B}", ms, 4 * N * S * D * H, "TFLOP/s", t,
            None)
    n = shapes[0][0]
    logits = (rng.standard_normal((n, V)) * 3).astype(np.float32)
    dl, tl, sampler = cuda.to_device(logits), torch.from_numpy(logits).to(timer.torch_device), BatchSampler(n, V)

    def torch_sample():  # the usual recipe, all rows at once
        top, idx = torch.softmax(tl / 0.7, dim=-1).topk(min(40, V), dim=-1)
        keep = top.cumsum(-1) - top < 0.9
        return idx.gather(-1, torch.multinomial(top * keep, 1))
    t = timer.pytorch(torch_sample)
    samplings = [Sampling(0.7, 40, 0.9, 0.5)] * n
    ms = timer.ours(lambda: sampler.launch(dl, samplings))
    row("sample_batch, the whole launch: settings up, ids back", f"N={n} V={V}", ms, 4 * n * V, "GB/s", t, None)
    # The kernel alone, as `sample` above is timed: the events bracket what the host does in between,
    # and the whole launch waits for two uploads and a download.
    for rows in sorted({1, n}):
        sampler.launch(dl[:rows], samplings[:rows])  # its settings, on the device
        launch = sample_batch_kernel[rows, min(sampler.block_size, MAX_BLOCK // 2)]
        arguments = (dl[:rows], *sampler.rows(rows))
        ms = timer.ours(lambda: launch(*arguments))
        row("sample_batch, its kernel alone", f"N={rows} V={V}", ms, 4 * rows * V, "GB/s", None, None)


def batch_decode_speed(model_dir, requests, prompt_tokens, new_tokens, warm_up=True):
    """Aggregate greedy tokens/s of `requests` generations through the engine on CUDA, beside one alone.
    The warm-up compiles the kernels first (skipped by --smoke: under the simulator nothing compiles)."""
    from inference import Settings, load_model
    from inference.engine import Engine
    model = load_model(model_dir, device="cuda")
    n_new = new_tokens or model.config.n_ctx - prompt_tokens
    prompt = model.tokenizer.encode("fn main() {\n    let x = 1;")[:prompt_tokens]
    engine = Engine(model, max_batch=requests)
    if warm_up:
        engine.warm_up()
    rates = []
    for n in (1, requests):
        t0 = time.perf_counter()
        submitted = [engine.submit(prompt, Settings(max_new_tokens=n_new, do_sample=False)) for _ in range(n)]
        tokens = sum(len(list(r.stream())) for r in submitted)
        rates.append(tokens / (time.perf_counter() - t0))
    engine.stop()
    print(f"the engine on cuda, greedy, {n_new} tokens each (prompt and compile included in neither):")
    print("| requests at once | tokens/s | vs one |")
    print("| --- | --- | --- |")
    for n, rate in zip((1, requests), rates):
        print(f"| {n} | {rate:,.0f} | {rate / rates[0]:.2f}x |")


def decode_speeds(model_dir, torch, torch_device, prompt_tokens, new_tokens):
    """Greedy decode tokens/s on the same weights: CUDA backend, NumPy backend, PyTorch (HF)."""
    import transformers

    from inference import load_model
    from inference.reference.sampling import Sampling
    greedy = Sampling(temperature=0.0, top_k=0, top_p=1.0, coin=0.5)
    rows = []
    for device in ("cuda", "cpu"):
        model = load_model(model_dir, device=device)
        n_new = new_tokens or model.config.n_ctx - prompt_tokens
        prompt = model.tokenizer.encode("fn main() {\n    let x = 1;")[:prompt_tokens]
        session = model.new_session()
        token = session.step(prompt, greedy).id
        t0 = time.perf_counter()
        for _ in range(n_new - 1):
            token = session.step([token], greedy).id
        rows.append((f"inference, {device} backend", (n_new - 1) / (time.perf_counter() - t0)))
    hf = transformers.GPT2LMHeadModel.from_pretrained(model_dir).to(torch_device).eval()
    _, seconds, _ = torch_loop(hf, torch, prompt, n_new, torch_device)
    rows.append((f"PyTorch eager (HF), {torch_device.type}", (n_new - 1) / seconds))
    print(f"greedy decode, batch 1, {model_dir.name}, {n_new - 1} tokens after a {len(prompt) + 1}-token start:")
    print("| backend | tokens/s |")
    print("| --- | --- |")
    for name, tps in rows:
        print(f"| {name} | {tps:,.0f} |")


@contextmanager
def launch_hook(hook):
    """hook(launch_config) -> launch_config, called on every `kernel[grid, block](...)`:
    a launch configures the kernel first, and all our kernels share one class
    (the simulator's too)."""
    from inference.kernels.gelu import gelu_v1_kernel
    kind = type(gelu_v1_kernel)
    configure = kind.__getitem__
    kind.__getitem__ = lambda self, launch_config: configure(self, hook(launch_config))
    try:
        yield
    finally:
        kind.__getitem__ = configure


@contextmanager
def counting_launches():
    count = [0]

    def counted(launch_config):
        count[0] += 1
        return launch_config

    with launch_hook(counted):
        yield count


def graph_costs(model, pool, batches, repeat):
    """The step's kernels launched one by one against the same kernels replayed
    as one CUDA graph, and whether the graph's logits are the launched ones."""
    from numba import config, cuda
    print("the decode step's kernels (CudaModel.batch_logits; not the copies in, nor sampling), launched one by one "
          "and replayed as one CUDA graph, ms:")
    print("| step | launched | as a graph | graph gains | same logits |")
    print("| --- | --- | --- | --- | --- |")
    for name, chunks in batches:
        rows = pool.upload_batch(chunks)
        want = model.batch_logits(pool, rows).copy_to_host()
        if config.ENABLE_CUDASIM:
            print(f"| {name} | - | - | - | not tried: the simulator has no CUDA graphs |")
            continue
        try:  # the backend's own recording (cuda_backend.StepGraphs), without its check
            graph = pool.graphs.record(rows)
            stream = pool.graphs.stream
        except Exception as e:  # an older numba-cuda or cuda.core: say why, and go on
            print(f"| {name} | - | - | - | not captured: {type(e).__name__}: {e} |")
            continue
        logits = pool.logits[:len(want)]
        logits.copy_to_device(np.full(want.shape, np.nan, dtype=np.float32))  # poisoned: the replay must write it

        def launched():
            model.batch_logits(pool, rows)
            cuda.synchronize()

        def replayed():
            graph.launch(stream)
            stream.sync()

        replayed()
        same = np.array_equal(logits.copy_to_host(), want)
        times = {fn: [] for fn in (launched, replayed)}
        for _ in range(repeat):  # taking turns
            for fn in times:
                t0 = time.perf_counter()
                fn()
                times[fn].append((time.perf_counter() - t0) * 1e3)
        one_by_one, as_graph = (float(np.median(t)) for t in times.values())
        print(f"| {name} | {one_by_one:.3f} | {as_graph:.3f} | {one_by_one / as_graph:.2f}x | "
              f"{'yes' if same else 'NO'} |")


def host_us(fn, n):
    """Host microseconds per call of fn, called n times back to back (after one call that compiles)."""
    from numba import cuda
    fn()
    cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    cuda.synchronize()
    return (time.perf_counter() - t0) / n * 1e6


def host_costs(n=2000):
    """What the host pays, in microseconds: launching a kernel that does
    nothing, with one array argument and with eight, and making a view of a
    device array (`x[:8]`), which a step's code does for each slice it passes."""
    from numba import cuda

    @cuda.jit
    def one(a):
        pass

    @cuda.jit
    def eight(a, b, c, d, e, f, g, h):
        pass

    x = cuda.device_array((64, 64), dtype=np.float32)
    return (host_us(lambda: one[1, 1](x), n), host_us(lambda: eight[1, 1](x, x, x, x, x, x, x, x), n),
            host_us(lambda: x[:8], n))


def timed_ms(step):
    t0 = time.perf_counter()
    step()  # ends with the chosen ids copied to the host: synchronized
    return (time.perf_counter() - t0) * 1e3


def launch_costs(model_dir, requests, prompt_tokens, repeat, warm_up=True):
    """Kernel launches in a decode step of the CUDA backend, and what they cost
    the host at least: launches x the time to launch an empty kernel. Where that
    floor is near the step's time, launch overhead, not the GPU, bounds decode.
    Then the engine's steps as the server runs them, replayed as CUDA graphs
    (cuda_backend.StepGraphs: only the sampler's kernel is launched)."""
    from inference import load_model
    from inference.reference.paged import Chunk
    from inference.reference.sampling import Sampling
    greedy = Sampling(temperature=0.0, top_k=0, top_p=1.0, coin=0.5)
    model = load_model(model_dir, device="cuda")
    prompt = model.tokenizer.encode("fn main() {\n    let x = 1;")[:prompt_tokens]
    session = model.new_session()
    token = session.step(prompt, greedy).id

    def session_step():
        session.length = len(prompt)  # the same position every time
        session.step([token], greedy)

    block, blocks_each = 16, -(-(len(prompt) + 1) // 16)
    pool = model.new_kv_pool(requests * blocks_each, block)
    tables = [list(range(i * blocks_each, (i + 1) * blocks_each)) for i in range(requests)]
    model.step_batch(pool, [Chunk(prompt, 0, table, greedy) for table in tables])  # prefill every sequence

    def engine_step(n, graphs):  # the pool's graphs on (where it can record them) or off
        def step():
            pool.graphs.on = graphs and can_record
            model.step_batch(pool, [Chunk([token], len(prompt), table, greedy) for table in tables[:n]])
        return step

    can_record = pool.graphs.on  # not under the simulator

    launch_us, launch_8_us, view_us = host_costs(200 if repeat == 1 else 2000)
    print(f"kernel launches in a decode step; an empty kernel launches in {launch_us:.1f} us on the host "
          f"({launch_8_us:.1f} us with 8 array arguments), and a view of a device array takes {view_us:.1f} us:")
    print("| step | kernel launches | launches x empty launch, ms | the step, ms |")
    print("| --- | --- | --- | --- |")
    for name, step in [("one sequence (CudaSession)", session_step), ("engine, 1 row", engine_step(1, False)),
                       (f"engine, {requests} rows", engine_step(requests, False)),
                       ("engine, 1 row, replayed as a CUDA graph", engine_step(1, True)),
                       (f"engine, {requests} rows, replayed as a CUDA graph", engine_step(requests, True))]:
        if warm_up:
            step()  # compiles what the prefill did not use
            step()  # and records the step as a graph, where the pool's graphs are on
        with counting_launches() as count:
            times = [timed_ms(step)]
        times += [timed_ms(step) for _ in range(repeat - 1)]
        print(f"| {name} | {count[0]} | {count[0] * launch_us / 1e3:.3f} | {np.median(times):.3f} |")
    print()
    graph_costs(model, pool, [(f"engine, {n} row{'s' * (n > 1)}", [Chunk([token], len(prompt), table, greedy)
                                                                  for table in tables[:n]]) for n in (1, requests)],
                repeat)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=ROOT / "data" / "claude-rust-small")
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, one repeat: check the script runs")
    args = ap.parse_args(argv)

    from numba import config, cuda
    if not (args.smoke or cuda.is_available()) or (config.ENABLE_CUDASIM and not args.smoke):
        raise SystemExit("bench_kernels.py times kernels on a CUDA GPU; none is usable here "
                         "(NUMBA_ENABLE_CUDASIM=1 ... --smoke checks the script under the simulator)")
    import torch
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch_device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    shapes = {name: sizes[1] if args.smoke else sizes[0] for name, sizes in SHAPES.items()}
    timer = Timer(1 if args.smoke else args.repeat, torch, torch_device)
    rng = np.random.default_rng(0)

    if config.ENABLE_CUDASIM:
        print("smoke run under Numba's CUDA simulator: every timing below is meaningless")
    else:
        from inference.backends.cuda_backend import gpu_name
        print(f"{gpu_name()}; {platform.machine()}; torch {torch.__version__} on {torch_device.type}; "
              f"TF32 off; median of {timer.repeat}")
    big = 1 << 28 if not args.smoke else 1 << 12
    ms = copy_ms(timer, big)
    if ms > 0:
        print(f"device-to-device copy of {big >> 20} MiB: {2 * big / (ms * 1e-3) / 1e9:.0f} GB/s (read + write)")
    print()
    print("| kernel | shape | ms | rate | PyTorch ms | ours / PyTorch | ours / copy |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    bench_rows(timer, shapes["rows"], rng)
    bench_linear(timer, shapes["linear"], rng)
    bench_attention(timer, shapes["attention"], rng)
    bench_sample(timer, shapes["vocab"][0], rng)
    bench_paged(timer, shapes["paged"], shapes["vocab"][0], rng)
    print()
    decode_speeds(args.model, torch, torch_device, *shapes["decode"][0])
    print()
    launch_costs(args.model, shapes["batch"][0], shapes["decode"][0][0], timer.repeat, warm_up=not args.smoke)
    print()
    batch_decode_speed(args.model, shapes["batch"][0], *shapes["decode"][0], warm_up=not args.smoke)


if __name__ == "__main__":
    main()
