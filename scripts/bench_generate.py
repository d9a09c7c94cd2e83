"""Prefill and decode speed, batch 1, greedy: our backends beside PyTorch.

    python scripts/bench_generate.py [--model data/claude-rust-small] [--new-tokens 256] [--device cpu]
        [--baseline OTHER_MODEL]

Prefill: one forward pass over a `--prompt-tokens` prompt (tokens/s).
Decode: then `--new-tokens` greedy steps against the KV cache (tokens/s),
capped so prompt + new tokens fit the context. Our figure comes from the
backend's session (model step + sampling, as the server runs it). When torch
and transformers are installed, the same weights run in Hugging Face
transformers (PyTorch eager): `generate()` as people call it, and a plain
loop over the model with its KV cache. The greedy tokens
must be identical. Best of `--repeat` runs. `--baseline` times another
model folder (an earlier edition, say) on our backend too, taking turns
with the first, at the prompt and decode lengths both contexts allow.
"""

import argparse
import platform
import time
from pathlib import Path

import numpy as np

from inference import load_model
from inference.reference.sampling import Sampling

ROOT = Path(__file__).resolve().parent.parent
GREEDY = Sampling(temperature=0.0, top_k=0, top_p=1.0, coin=0.5)


def ours(model, prompt, n_new):
    session = model.new_session()
    t0 = time.perf_counter()
    token = session.step(prompt, GREEDY).id
    t1 = time.perf_counter()
    tokens = [token]
    for _ in range(n_new - 1):
        tokens.append(session.step([tokens[-1]], GREEDY).id)
    t2 = time.perf_counter()
    return t1 - t0, t2 - t1, tokens


def torch_loop(hf, torch, prompt, n_new, device="cpu"):
    """The plain loop: a step over the prompt, then one step a token against
    the KV cache, each token's id read back as ours is. The cache goes in as
    the model's second argument, its place in every version of transformers,
    which renamed it from past_key_values to cache in 5.x."""
    with torch.no_grad():
        t0 = time.perf_counter()
        out = hf(torch.tensor([prompt], device=device), use_cache=True)
        token = int(out.logits[0, -1].argmax())
        t1 = time.perf_counter()
        tokens, cache = [token], kv_cache(out)
        for _ in range(n_new - 1):
            out = hf(torch.tensor([[tokens[-1]]], device=device), cache, use_cache=True)
            cache = kv_cache(out)
            tokens.append(int(out.logits[0, -1].argmax()))
        t2 = time.perf_counter()
    return t1 - t0, t2 - t1, tokens


def kv_cache(out):  # a transformers model's output -> its KV cache
    return out.cache if hasattr(out, "cache") else out.past_key_values


def torch_generate(hf, torch, prompt, n_new):
    with torch.no_grad():
        t0 = time.perf_counter()
        out = hf.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                          max_new_tokens=n_new, min_new_tokens=n_new, do_sample=False, pad_token_id=0)
        t1 = time.perf_counter()
    return None, t1 - t0, out[0, len(prompt):].tolist()


def fastest(runs):  # [(prefill s or None, decode s, tokens)] -> the best of each time, the first run's tokens
    prefill = min((r[0] for r in runs if r[0] is not None), default=None)
    return prefill, min(r[1] for r in runs), runs[0][2]


def best(fn, repeat):
    return fastest([fn() for _ in range(repeat)])


def best_in_turns(fns, repeat):  # best() of each function, the functions taking turns
    runs = [[fn() for fn in fns] for _ in range(repeat)]
    return [fastest([r[i] for r in runs]) for i in range(len(fns))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=ROOT / "data" / "claude-rust-small")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--prompt-tokens", type=int, default=0, help="0: half the context")
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--baseline", type=Path, help="another model folder to time on our backend, beside --model")
    args = ap.parse_args()

    model = load_model(args.model, device=args.device)
    models = [model] + ([load_model(args.baseline, device=args.device)] if args.baseline else [])
    n_ctx = min(m.config.n_ctx for m in models)
    sample = (ROOT / "tests" / "data" / "rust_sample.rs").read_text(encoding="utf-8")
    prompt_tokens = args.prompt_tokens or n_ctx // 2
    prompt = model.tokenizer.encode(sample)[:prompt_tokens]
    decode_prompt = prompt[:8]
    n_decode = min(args.new_tokens, n_ctx - len(decode_prompt))

    rows = []
    prefills = best_in_turns([lambda m=m: ours(m, prompt, 1) for m in models], args.repeat)
    decodes = best_in_turns([lambda m=m: ours(m, decode_prompt, n_decode) for m in models], args.repeat)
    our_tokens = decodes[0][2]
    for m, path, (p, _, _), (_, d, _) in zip(models, [args.model, args.baseline], prefills, decodes):
        name = f"inference ({m.device})" + (f", {path}" if args.baseline else "")
        rows.append((name, len(prompt) / p, (n_decode - 1) / d))
    same = None
    try:
        import torch
        import transformers
        transformers.logging.set_verbosity_error()
        hf = transformers.GPT2LMHeadModel.from_pretrained(args.model).eval()
        p, _, _ = best(lambda: torch_loop(hf, torch, prompt, 1), args.repeat)
        _, d, loop_tokens = best(lambda: torch_loop(hf, torch, decode_prompt, n_decode), args.repeat)
        loop_row = len(rows)
        rows.append(("PyTorch eager, KV-cache loop", len(prompt) / p, (n_decode - 1) / d))
        _, d, gen_tokens = best(lambda: torch_generate(hf, torch, decode_prompt, n_decode), args.repeat)
        rows.append(("PyTorch eager, HF generate()", None, n_decode / d))
        same = our_tokens == loop_tokens == gen_tokens
        threads = f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    except ImportError:
        threads = "torch/transformers not installed: no comparison"

    for m, path in zip(models, [args.model, args.baseline]):
        print(f"model {path}: {m.config.n_layer} layers, n_embd {m.config.n_embd}, n_ctx {m.config.n_ctx}")
    print(f"{platform.machine()}, {threads}, numpy {np.__version__}")
    print(f"prefill: {len(prompt)} prompt tokens; decode: {n_decode} new tokens after an {len(decode_prompt)}-token "
          f"prompt; greedy, batch 1, best of {args.repeat}")
    width = max(30, *(len(name) for name, _, _ in rows))
    print(f"| {'backend':<{width}} | prefill tok/s | decode tok/s | decode vs ours |")
    print(f"| {'-' * width} | ------------- | ------------ | -------------- |")
    for name, pre, dec in rows:
        pre_s = f"{pre:13,.0f}" if pre else f"{'-':>13}"
        print(f"| {name:<{width}} | {pre_s} | {dec:12,.0f} | {dec / rows[0][2]:13.2f}x |")
    if same is not None:
        print(f"identical greedy tokens: {same}")
        print(f"our decode / PyTorch eager decode: {rows[0][2] / rows[loop_row][2]:.2f}x (loop), "
              f"{rows[0][2] / rows[loop_row + 1][2]:.2f}x (generate)")


if __name__ == "__main__":
    main()
