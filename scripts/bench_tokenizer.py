"""Encoding speed: our tokenizer against tiktoken, same ranks, same text, one thread each.

    python scripts/bench_tokenizer.py [--mb 4] [--repeat 5]

Two texts of `--mb` MB each: Rust source (the model's domain: the corpus
validation and training shards when corpus/ exists, else the test sample)
and the mixed-script test corpus (tests/text_corpus.py: English, emoji, CJK,
combining marks, random code points). Each encoder first encodes a
*different* text of the same kind (so our piece cache is warm the way a
running server's is, not filled with the very pieces being timed), then the
text is timed `--repeat` times; the best time counts. Prints MB/s for both
and the ratio.
"""

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("RAYON_NUM_THREADS", "1")  # tiktoken: one thread, like us

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import tiktoken  # noqa: E402

from inference.tokenizer import ENDOFTEXT, GPT2_PATTERN, Tokenizer  # noqa: E402
from text_corpus import varied_text  # noqa: E402


def best_time(fn, text, warm_up, repeat):
    fn(warm_up)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(text)
        times.append(time.perf_counter() - t0)
    return min(times)


def rust_texts(n_bytes):
    """(timed, warm-up) Rust source of about n_bytes each, from different files."""
    shards = sorted((ROOT / "corpus").glob("*.txt"))
    source = "".join(f.read_text(encoding="utf-8") for f in shards[:2]).replace(ENDOFTEXT, "")
    if len(source) < 2 * n_bytes:
        source = (ROOT / "tests" / "data" / "rust_sample.rs").read_text(encoding="utf-8")
        source = source * (2 * n_bytes // len(source) + 1)
    return source[:n_bytes], source[-n_bytes:]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=4.0)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--model", type=Path, default=ROOT / "data" / "claude-rust-small")
    args = ap.parse_args()

    ours = Tokenizer.from_dir(args.model)
    theirs = tiktoken.Encoding("same-ranks", pat_str=GPT2_PATTERN, mergeable_ranks=ours.encoder,
                               special_tokens=ours.special_tokens)
    n = int(args.mb * 2**20)
    texts = {"Rust source": rust_texts(n), "mixed scripts": (varied_text(n, seed=0), varied_text(n, seed=1))}
    print(f"vocabulary: {ours.vocab_size} ({args.model.name}); {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}, tiktoken {tiktoken.__version__}; best of {args.repeat}")
    print("| text | MB | inference MB/s | tiktoken MB/s | ours / tiktoken |")
    print("| --- | --- | --- | --- | --- |")
    for name, (text, warm_up) in texts.items():
        assert ours.encode(text) == theirs.encode_ordinary(text), "the two encoders disagree"
        ours._cache.clear()
        n_mb = len(text.encode("utf-8")) / 2**20
        t_ours = best_time(ours.encode, text, warm_up, args.repeat)
        t_theirs = best_time(theirs.encode_ordinary, text, warm_up, args.repeat)
        print(f"| {name} | {n_mb:.2f} | {n_mb / t_ours:.2f} | {n_mb / t_theirs:.2f} | {t_theirs / t_ours:.2f}x |")


if __name__ == "__main__":
    main()
