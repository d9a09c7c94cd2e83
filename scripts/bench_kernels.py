"""Kernel timings on a GPU, beside PyTorch and the device's copy bandwidth, in one run.

    pip install -e .[cuda,train] transformers
    python scripts/bench_kernels.py [--model data/claude-rust-small] [--repeat 50]

Each kernel version is timed with CUDA events after a warm-up launch
(median of `--repeat`), at GPT-2-small shapes and larger, and printed as
ms, GB/s (memory-bound kernels: bytes that must move at least once) or
TFLOP/s (matmul), beside the same operation in PyTorch (float32, TF32 off)
and beside a device-to-device copy of the same bytes. Then end-to-end decode
tokens/s: the CUDA backend, the NumPy backend, and PyTorch on the same weights.
"""

import argparse
import platform
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def cuda_ms(fn, repeat):
    from numba import cuda
    fn()  # warm-up (and compilation)
    times = []
    for _ in range(repeat):
        start, end = cuda.event(), cuda.event()
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(cuda.event_elapsed_time(start, end))
    return float(np.median(times))


def torch_ms(torch, fn, repeat):
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeat):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return float(np.median(times))


def row(name, shape, ms, work, unit, torch_time, copy_time):
    rate = work / (ms * 1e-3) / (1e12 if unit == "TFLOP/s" else 1e9)
    torch_s = f"{torch_time:.4f}" if torch_time else "-"
    vs_torch = f"{ms / torch_time:.2f}x" if torch_time else "-"
    copy_s = f"{ms / copy_time:.2f}x" if copy_time else "-"
    print(f"| {name} | {shape} | {ms:.4f} | {rate:.1f} {unit} | {torch_s} | {vs_torch} | {copy_s} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=ROOT / "data" / "claude-rust-small")
    ap.add_argument("--repeat", type=int, default=50)
    args = ap.parse_args()

    from numba import config, cuda
    if config.ENABLE_CUDASIM or not cuda.is_available():
        raise SystemExit("bench_kernels.py times kernels on a CUDA GPU; none is usable here")
    import torch
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    import torch.nn.functional as F

    from inference.backends.cuda_backend import gpu_name
    from inference.kernels import attention, gelu, layernorm, matmul, softmax
    from inference.kernels.sampling import Sampler

    rng = np.random.default_rng(0)
    dev = torch.device("cuda")
    print(f"{gpu_name()}; {platform.machine()}; torch {torch.__version__}; TF32 off; median of {args.repeat}")

    def copy_ms(n_bytes):
        src = cuda.device_array(n_bytes // 4, dtype=np.float32)
        dst = cuda.device_array(n_bytes // 4, dtype=np.float32)
        return cuda_ms(lambda: dst.copy_to_device(src), args.repeat)

    big = 1 << 28
    print(f"device-to-device copy of {big >> 20} MiB: {2 * big / (copy_ms(big) * 1e-3) / 1e9:.0f} GB/s "
          "(read + write)")
    print()
    print("| kernel | shape | ms | rate | PyTorch ms | ours / PyTorch | ours / copy |")
    print("| --- | --- | --- | --- | --- | --- | --- |")

    for N, C in [(1024, 768), (8192, 1600), (65536, 1024)]:
        x = rng.standard_normal((N, C)).astype(np.float32)
        g, b = np.ones(C, np.float32), np.zeros(C, np.float32)
        dx, dg, db, out = cuda.to_device(x), cuda.to_device(g), cuda.to_device(b), cuda.device_array((N, C), np.float32)
        tx, tg, tb = (torch.from_numpy(a).to(dev) for a in (x, g, b))
        t = torch_ms(torch, lambda: F.layer_norm(tx, (C,), tg, tb, 1e-5), args.repeat)
        moved = 2 * x.nbytes
        c = copy_ms(x.nbytes)
        for v in layernorm.VERSIONS:
            ms = cuda_ms(lambda: layernorm.layer_norm(dx, dg, db, 1e-5, out=out, version=v), args.repeat)
            row(f"layer_norm v{v}", f"{N}x{C}", ms, moved, "GB/s", t, c)
        t = torch_ms(torch, lambda: F.gelu(tx, approximate="tanh"), args.repeat)
        for v in gelu.VERSIONS:
            ms = cuda_ms(lambda: gelu.gelu(dx, out=out, version=v), args.repeat)
            row(f"gelu v{v}", f"{N}x{C}", ms, moved, "GB/s", t, c)
        t = torch_ms(torch, lambda: torch.softmax(tx, dim=-1), args.repeat)
        for v in softmax.VERSIONS:
            ms = cuda_ms(lambda: softmax.softmax(dx, out=out, version=v), args.repeat)
            row(f"softmax v{v}", f"{N}x{C}", ms, moved, "GB/s", t, c)

    for N, K, M in [(1, 768, 3072), (1, 768, 50257), (1024, 768, 3072), (4096, 1024, 4096)]:
        x = rng.standard_normal((N, K)).astype(np.float32)
        w = rng.standard_normal((K, M)).astype(np.float32)
        b = rng.standard_normal(M).astype(np.float32)
        dx, dw, db, out = cuda.to_device(x), cuda.to_device(w), cuda.to_device(b), cuda.device_array((N, M), np.float32)
        tx, tw, tb = (torch.from_numpy(a).to(dev) for a in (x, w, b))
        t = torch_ms(torch, lambda: torch.addmm(tb, tx, tw), args.repeat)
        for v in matmul.VERSIONS:
            if v == 1 and N > 1024:
                continue  # minutes per launch: the point is made at smaller sizes
            ms = cuda_ms(lambda: matmul.linear(dx, dw, db, out=out, version=v), args.repeat)
            row(f"linear v{v}", f"{N}x{K}x{M}", ms, 2 * N * K * M, "TFLOP/s", t, None)

    for T, S, C, H in [(1, 1024, 768, 12), (1024, 1024, 768, 12)]:
        q, k, v_ = (rng.standard_normal((n, C)).astype(np.float32) for n in (T, S, S))
        dq, dk, dv, out = cuda.to_device(q), cuda.to_device(k), cuda.to_device(v_), cuda.device_array((T, C), np.float32)
        D = C // H
        tq, tk, tv = (torch.from_numpy(a).to(dev).view(-1, H, D).transpose(0, 1) for a in (q, k, v_))
        causal = T > 1
        t = torch_ms(torch, lambda: F.scaled_dot_product_attention(tq, tk, tv, is_causal=causal), args.repeat)
        flops = 4 * H * D * (T * S if T == 1 else T * (T + 1) / 2)
        for version in attention.VERSIONS:
            ms = cuda_ms(lambda: attention.attention(dq, dk, dv, H, out=out, version=version), args.repeat)
            row(f"attention v{version}", f"T={T} S={S} C={C} H={H}", ms, flops, "TFLOP/s", t, None)

    V = 50257
    logits = cuda.to_device((rng.standard_normal(V) * 3).astype(np.float32))
    sampler = Sampler(V)
    tl = torch.from_numpy(logits.copy_to_host()).to(dev)

    def torch_sample():  # the usual PyTorch recipe: sort, cumulative sum, multinomial
        probs = torch.softmax(tl / 0.7, dim=-1)
        top, idx = probs.topk(40)
        keep = top.cumsum(0) - top < 0.9
        return idx[torch.multinomial(top * keep, 1)]
    t = torch_ms(torch, torch_sample, args.repeat)
    ms = cuda_ms(lambda: sampler.launch(logits, 0.7, 40, 0.9, 0.5), args.repeat)
    row("sample (T 0.7, top-k 40, top-p 0.9)", f"V={V}", ms, 4 * V, "GB/s", t, None)

    print()
    decode_speeds(args.model, torch)


def decode_speeds(model_dir, torch):
    """Greedy decode tokens/s on the same weights: CUDA backend, NumPy backend, PyTorch (HF) on the GPU."""
    import transformers

    from inference import load_model
    rows = []
    for device in ("cuda", "cpu"):
        model = load_model(model_dir, device=device)
        n_new = model.config.n_ctx - 8
        prompt = model.tokenizer.encode("fn main() {\n    let")[:8]
        session = model.new_session()
        token = session.step(prompt, 0.0, 0, 1.0, 0.5)
        t0 = time.perf_counter()
        for _ in range(n_new - 1):
            token = session.step([token], 0.0, 0, 1.0, 0.5)
        rows.append((f"inference, {device} backend", (n_new - 1) / (time.perf_counter() - t0)))
    hf = transformers.GPT2LMHeadModel.from_pretrained(model_dir).cuda().eval()
    with torch.no_grad():
        out = hf(torch.tensor([prompt]).cuda(), use_cache=True)
        past, token = out.past_key_values, out.logits[0, -1].argmax()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(n_new - 1):
            out = hf(token.view(1, 1), past_key_values=past, use_cache=True)
            past, token = out.past_key_values, out.logits[0, -1].argmax()
        torch.cuda.synchronize()
    rows.append(("PyTorch eager (HF), cuda", (n_new - 1) / (time.perf_counter() - t0)))
    print(f"greedy decode, batch 1, {model_dir.name}, {n_new - 1} tokens:")
    print("| backend | tokens/s |")
    print("| --- | --- |")
    for name, tps in rows:
        print(f"| {name} | {tps:,.0f} |")


if __name__ == "__main__":
    main()
