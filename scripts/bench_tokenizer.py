"""Encoding speed: our tokenizer against tiktoken, same ranks, same text, one thread each.

    python scripts/bench_tokenizer.py [--mb 4] [--repeat 5] [--rust DIR] [--ranks FILE]

Two texts of `--mb` MB each: Rust source (the .rs files under `--rust`, e.g.
the standard library: `apt-get download rust-src && dpkg -x rust-src_*.deb
/tmp/rust-src`, then `--rust /tmp/rust-src/usr/src/rustc-*/library`; else the
corpus shards when corpus/ exists, else the test sample) and the mixed-script
test corpus (tests/text_corpus.py: English, emoji, CJK, combining marks,
random code points). Each encoder first encodes a *different* text of the
same kind (so our piece cache is warm the way a running server's is, not
filled with the very pieces being timed), then the text is timed `--repeat`
times; the best time counts. Prints MB/s for both and the ratio.

Then the worst case for BPE: 1 MB of one repeated character, a single piece
of a million bytes (timed once: long pieces are not cached).

`--ranks` takes a tiktoken ranks file instead of the shipped vocabulary, such
as GPT-2's (`whisper/assets/gpt2.tiktoken` in the openai-whisper sdist:
`pip download openai-whisper --no-deps`).
"""

import argparse
import os
import platform
import sys
import time
from pathlib import Path

os.environ.setdefault("RAYON_NUM_THREADS", "1")  # tiktoken: one thread, like us
os.environ["RUST_BACKTRACE"] = "0"  # a tiktoken panic is a message, not a backtrace

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


def rust_texts(n_bytes, folder):
    """(timed, warm-up) Rust source of about n_bytes each, from different files."""
    if folder:
        files = sorted(Path(folder).rglob("*.rs"))
        source = "".join(f.read_text(encoding="utf-8", errors="replace") for f in files[::max(1, len(files) // 2000)])
    else:
        shards = sorted((ROOT / "corpus").glob("*.txt"))
        source = "".join(f.read_text(encoding="utf-8") for f in shards[:2]).replace(ENDOFTEXT, "")
    if len(source) < 2 * n_bytes:
        source = (ROOT / "tests" / "data" / "rust_sample.rs").read_text(encoding="utf-8")
        source = source * (2 * n_bytes // len(source) + 1)
    return source[:n_bytes], source[-n_bytes:]


def time_once(fn, text):
    """Seconds for one call, or the exception's name (tiktoken can overflow its stack on one long piece)."""
    t0 = time.perf_counter()
    try:
        fn(text)
    except BaseException as e:  # a Rust panic arrives as pyo3's PanicException, a BaseException
        if isinstance(e, KeyboardInterrupt):
            raise
        return f"failed: {str(e).split(':')[-1].strip() or type(e).__name__}"
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=4.0)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--model", type=Path, default=ROOT / "data" / "claude-rust-small")
    ap.add_argument("--ranks", type=Path, help="a tiktoken ranks file to use instead of --model's vocabulary")
    ap.add_argument("--rust", type=Path, help="a folder of .rs files for the Rust text")
    ap.add_argument("--repeated-mb", type=float, default=1.0, help="size of the one-character texts")
    args = ap.parse_args()

    ours = Tokenizer.from_tiktoken(args.ranks) if args.ranks else Tokenizer.from_dir(args.model)
    theirs = tiktoken.Encoding("same-ranks", pat_str=GPT2_PATTERN, mergeable_ranks=ours.encoder,
                               special_tokens=ours.special_tokens)
    n = int(args.mb * 2**20)
    texts = {"Rust source": rust_texts(n, args.rust), "mixed scripts": (varied_text(n, seed=0), varied_text(n, seed=1))}
    print(f"vocabulary: {ours.vocab_size} ({args.ranks.name if args.ranks else args.model.name}); "
          f"{platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"tiktoken {tiktoken.__version__}; best of {args.repeat}")
    print("| text | MB | inference MB/s | tiktoken MB/s | ours / tiktoken |")
    print("| --- | --- | --- | --- | --- |")
    for name, (text, warm_up) in texts.items():
        assert ours.encode(text) == theirs.encode_ordinary(text), "the two encoders disagree"
        ours._cache, ours._cache_chars = {}, 0
        n_mb = len(text.encode("utf-8")) / 2**20
        t_ours = best_time(ours.encode, text, warm_up, args.repeat)
        t_theirs = best_time(theirs.encode_ordinary, text, warm_up, args.repeat)
        print(f"| {name} | {n_mb:.2f} | {n_mb / t_ours:.2f} | {n_mb / t_theirs:.2f} | {t_theirs / t_ours:.2f}x |")

    print()
    print("| one character repeated | MB | inference s | tiktoken s | ours / tiktoken |")
    print("| --- | --- | --- | --- | --- |")
    n = int(args.repeated_mb * 2**20)
    for char in (" ", "a", "=", "1"):
        text = char * n
        t_ours, t_theirs = time_once(ours.encode, text), time_once(theirs.encode_ordinary, text)
        ratio = f"{t_theirs / t_ours:.2f}x" if isinstance(t_theirs, float) else "-"
        theirs_s = f"{t_theirs:.2f}" if isinstance(t_theirs, float) else t_theirs
        print(f"| {char!r} | {n / 2**20:.2f} | {t_ours:.2f} | {theirs_s} | {ratio} |")


if __name__ == "__main__":
    main()
