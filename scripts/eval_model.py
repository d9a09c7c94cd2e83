"""Bits per byte of models on the validation split, beside gzip -9 and xz -9e.

    python scripts/eval_model.py [--model data/claude-rust-small [--model OTHER ...]] [--text corpus/val-000.txt]
        [--max-bytes N] [--positions]

The model is run by the NumPy reference (inference.reference), not PyTorch.
The text is encoded with "<|endoftext|>" as the special token it is; an
<|endoftext|> is prepended as the first context, and every token of the
text is scored. Windows of n_ctx tokens slide by half a window, and each
token is scored once, in the first window where it has at least half a
window of context (or all there is, at the start). Bits per byte = total
-log2 p(token) / bytes of the text file: the same bytes gzip and xz see.
--positions adds what a longer context buys: bits per token by the number of
tokens of context before it, from windows of n_ctx + 1 tokens without overlap.
"xz -9e, each file alone" compresses the files (the pieces between
<|endoftext|>) one by one, without the .xz container: what xz gets without
remembering other files, which a model's window of n_ctx tokens mostly cannot
see either. Its distance from the plain xz row is how much the text repeats
itself across files.
"""

import argparse
import gzip
import lzma
import math
import platform
import time
from pathlib import Path

import numpy as np

from inference import load_model
from inference.tokenizer import ENDOFTEXT

ROOT = Path(__file__).resolve().parent.parent


def log_probs_of_targets(logits, targets):  # [T, V], [T] -> [T] natural-log probabilities (float64)
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return z[np.arange(len(targets)), targets] - log_norm


def model_bits(model, ids, stride):
    """Total -log2 p over ids[1:], each predicted from up to n_ctx - 1 earlier tokens."""
    n_ctx, total, scored_until = model.config.n_ctx, 0.0, 1  # ids[0] is the <|endoftext|> context
    for start in range(0, len(ids) - 1, stride):
        window = ids[start:start + n_ctx + 1]  # n_ctx inputs, each predicting the next
        logp = log_probs_of_targets(model.forward(window[:-1]), np.asarray(window[1:]))
        first = scored_until - (start + 1)  # targets before this index were scored by an earlier window
        total -= logp[first:].sum() / math.log(2)
        scored_until = start + len(window)
        if scored_until >= len(ids):
            break
    return total


POSITION_EDGES = (0, 16, 64, 128, 256, 384, 512, 1024)


def bits_by_position(model, ids):
    """Mean -log2 p of a token by how many tokens of context it had: the text
    cut into windows of n_ctx + 1 tokens (no overlap), every target scored.
    -> {(first, last position): bits per token}, for the buckets within n_ctx."""
    n_ctx = model.config.n_ctx
    starts = range(0, len(ids) - n_ctx, n_ctx + 1)  # every full window
    totals = np.zeros(n_ctx)
    for start in starts:
        window = ids[start:start + n_ctx + 1]
        totals -= log_probs_of_targets(model.forward(window[:-1]), np.asarray(window[1:])) / math.log(2)
    edges = [e for e in POSITION_EDGES if e < n_ctx] + [n_ctx]
    return {(a, b - 1): totals[a:b].mean() / len(starts) for a, b in zip(edges, edges[1:])} if starts else {}


def print_positions(by_model):
    """One row per bucket of context positions, one column per model."""
    buckets = sorted({bucket for table in by_model.values() for bucket in table})
    print("bits per token by how many tokens of context it had (windows of n_ctx + 1 tokens, no overlap):")
    print("| context positions | " + " | ".join(str(path) for path in by_model) + " |")
    print("| --- |" + " --- |" * len(by_model))
    for bucket in buckets:
        cells = [f"{table[bucket]:.3f}" if bucket in table else "-" for table in by_model.values()]
        print(f"| {bucket[0]}-{bucket[1]} | " + " | ".join(cells) + " |")


XZ_EXTREME = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]  # xz -9e's filter


def xz_each_file_bits(data: bytes) -> int:
    """Bits of the files between <|endoftext|> separators, each compressed on
    its own (raw LZMA2 stream: no container header per file)."""
    files = [f for f in data.split(ENDOFTEXT.encode()) if f]
    return 8 * sum(len(lzma.compress(f, format=lzma.FORMAT_RAW, filters=XZ_EXTREME)) for f in files)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, action="append", help="model folders (default: the shipped model)")
    ap.add_argument("--text", type=Path, default=ROOT / "corpus" / "val-000.txt")
    ap.add_argument("--max-bytes", type=int, default=0, help="evaluate only the first N bytes (0: all)")
    ap.add_argument("--positions", action="store_true",
                    help="also print bits per token by context position (one more pass, without overlap)")
    args = ap.parse_args()

    data = args.text.read_bytes()
    if args.max_bytes:
        data = data[:args.max_bytes].decode("utf-8", errors="ignore").encode("utf-8")
    print(f"text: {args.text.name}, {len(data):,} bytes; {platform.machine()}, Python {platform.python_version()}")
    rows, by_position = [], {}
    for path in args.model or [Path("data/claude-rust-small")]:
        model = load_model(path if path.exists() else ROOT / path, device="cpu")
        eot = model.tokenizer.special_tokens[ENDOFTEXT]
        ids = [eot] + model.tokenizer.encode(data.decode("utf-8"), allowed_special={ENDOFTEXT})
        t0 = time.perf_counter()
        bits = model_bits(model, ids, stride=model.config.n_ctx // 2)
        print(f"{path}: {len(ids) - 1:,} tokens ({len(data) / (len(ids) - 1):.2f} bytes/token), context "
              f"{model.config.n_ctx}; model pass {time.perf_counter() - t0:.0f}s", flush=True)
        rows.append((f"{path} (NumPy reference)", bits / len(data)))
        if args.positions:
            by_position[path] = bits_by_position(model, ids)
    rows += [
        ("gzip -9", 8 * len(gzip.compress(data, compresslevel=9)) / len(data)),
        ("xz -9e", 8 * len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME)) / len(data)),
        ("xz -9e, each file alone", xz_each_file_bits(data) / len(data)),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"| {'method':<{width}} | bits per byte |")
    print(f"| {'-' * width} | ------------- |")
    for name, bpb in rows:
        print(f"| {name:<{width}} | {bpb:13.3f} |")
    if by_position:
        print()
        print_positions(by_position)


if __name__ == "__main__":
    main()
