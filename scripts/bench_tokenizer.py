"""Encoding speed: our tokenizer against tiktoken, same ranks, same text, one thread each.

    python scripts/bench_tokenizer.py [--mb 4] [--repeat 5]

The text is the varied test corpus (tests/text_corpus.py: Rust, English,
emoji, CJK, whitespace runs, ...) plus the Rust validation split when
corpus/ exists. Each encoder gets one warm-up pass (filling our piece cache,
as a running server's would be) and is then timed `--repeat` times; the
best time counts. Prints MB/s for both and the ratio.
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


def best_time(fn, text, repeat):
    fn(text)  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(text)
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=4.0)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--model", type=Path, default=ROOT / "data" / "claude-rust-small")
    args = ap.parse_args()

    ours = Tokenizer.from_dir(args.model)
    theirs = tiktoken.Encoding("same-ranks", pat_str=GPT2_PATTERN, mergeable_ranks=ours.encoder,
                               special_tokens=ours.special_tokens)
    text = varied_text(int(args.mb * 2**20) // 2, seed=0)
    val = ROOT / "corpus" / "val-000.txt"
    if val.is_file():
        text += val.read_text(encoding="utf-8").replace(ENDOFTEXT, "")[: int(args.mb * 2**20) // 2]
    else:
        text += varied_text(int(args.mb * 2**20) // 2, seed=1)
    n_mb = len(text.encode("utf-8")) / 2**20
    assert ours.encode(text) == theirs.encode_ordinary(text), "the two encoders disagree"

    t_ours = best_time(ours.encode, text, args.repeat)
    t_theirs = best_time(theirs.encode_ordinary, text, args.repeat)
    print(f"text: {n_mb:.2f} MB; vocabulary: {ours.vocab_size} ({args.model.name}); "
          f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")
    print(f"{'encoder':<12}{'seconds':>10}{'MB/s':>10}")
    print(f"{'inference':<12}{t_ours:>10.3f}{n_mb / t_ours:>10.2f}")
    print(f"{'tiktoken':<12}{t_theirs:>10.3f}{n_mb / t_theirs:>10.2f}")
    print(f"ratio (ours / tiktoken throughput): {t_theirs / t_ours:.2f}x")


if __name__ == "__main__":
    main()
