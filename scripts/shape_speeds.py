"""Decode speed of model shapes of about the same size, before any training:
what a deeper or a wider claude-rust-small would cost a 2-core CPU per token.

    python scripts/shape_speeds.py [--shapes 3x352x4,6x256x4,8x224x4,12x192x3] [--context 512]
        [--positions 256] [--repeat 5]

Each shape (layers x n_embd x heads), with the shipped vocabulary, random
weights and --context positions: its parameters, its size in float32, and
greedy decode tokens/s of one sequence on the NumPy backend (the session step
with sampling, as the server runs it), 64 steps after a prompt of --positions
tokens. The shapes take turns, best of --repeat rounds. Loss at a given
size depends little on the shape over a wide range of n_embd / n_layer
(Kaplan et al. 2020, "Scaling Laws for Neural Language Models", section
3.1), so what each shape costs to run is what sets candidates of one size
apart; the model card says which was chosen and why.
"""

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np

from inference.backends.numpy_backend import NumpyModel
from inference.checkpoint import expected_shapes, nest
from inference.reference.model import GPT2Config
from inference.reference.sampling import Sampling
from inference.tokenizer import Tokenizer

ROOT = Path(__file__).resolve().parent.parent
GREEDY = Sampling(temperature=0.0, top_k=0, top_p=1.0, coin=0.5)


def random_model(shape: str, context: int, tokenizer) -> NumpyModel:
    n_layer, n_embd, n_head = map(int, shape.split("x"))
    config = GPT2Config(n_layer=n_layer, n_head=n_head, n_embd=n_embd, n_ctx=context,
                        vocab_size=tokenizer.vocab_size)
    rng = np.random.default_rng(0)
    tensors = {name: (0.02 * rng.standard_normal(s)).astype(np.float32) for name, s in expected_shapes(config).items()}
    return NumpyModel(config, nest(tensors, config), tokenizer, shape)


def decode_seconds(model, prompt, steps=64) -> float:
    session = model.new_session()
    token = session.step(prompt, GREEDY).id
    t0 = time.perf_counter()
    for _ in range(steps):
        token = session.step([token], GREEDY).id
    return (time.perf_counter() - t0) / steps


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default="3x352x4,6x256x4,8x224x4,12x192x3")
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--positions", type=int, default=256, help="prompt tokens before the timed steps")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    tokenizer = Tokenizer.from_dir(ROOT / "data" / "claude-rust-small")
    models = [random_model(shape, args.context, tokenizer) for shape in args.shapes.split(",")]
    prompt = tokenizer.encode((ROOT / "tests" / "data" / "rust_sample.rs").read_text())[:args.positions]
    best = [float("inf")] * len(models)
    for _ in range(args.repeat):
        for i, model in enumerate(models):
            best[i] = min(best[i], decode_seconds(model, prompt))
    print(f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, NumPy "
          f"{np.__version__}; vocabulary {tokenizer.vocab_size}, context {args.context}; decode after "
          f"{len(prompt)} tokens, best of {args.repeat}")
    print("| layers x n_embd x heads | parameters | MB (float32) | decode tok/s | vs the first |")
    print("| --- | --- | --- | --- | --- |")
    for model, seconds in zip(models, best):
        n = sum(int(np.prod(s)) for s in expected_shapes(model.config).values())
        print(f"| {model.name} | {n:,} | {4 * n / 1e6:.1f} | {1 / seconds:,.0f} | {best[0] / seconds:.2f}x |")


if __name__ == "__main__":
    main()
