"""Learn a byte-level BPE vocabulary from text files.

    python scripts/train_tokenizer.py corpus/train-*.txt --merges 3840 --out data/claude-rust-small

Reads at most `--max-mb` of text (an equal share from each file), splits it on "<|endoftext|>"
so no merge crosses a document boundary, learns the merges with
`inference.tokenizer.train_bpe`, and writes vocab.json + merges.txt.
The vocabulary size is 256 bytes + merges + 1 (<|endoftext|>).
"""

import argparse
import time
from pathlib import Path

from inference.tokenizer import ENDOFTEXT, count_pieces, train_bpe


def read_text(files: list[Path], max_bytes: int) -> list[str]:
    """Documents from the files, at most max_bytes / len(files) from each:
    shards are in crate order, so each shard gives its share."""
    docs, share = [], max_bytes // len(files)
    for f in files:
        size = 0
        for doc in f.read_text(encoding="utf-8").split(ENDOFTEXT):
            if size >= share:
                break
            docs.append(doc[: share - size])
            size += len(docs[-1].encode("utf-8"))
    return docs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--merges", type=int, default=3840)
    ap.add_argument("--max-mb", type=float, default=10.0)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--eval", type=Path, help="also print bytes per token on this text (e.g. corpus/val-000.txt)")
    args = ap.parse_args()

    t0 = time.perf_counter()
    docs = read_text(args.files, int(args.max_mb * 2**20))
    pieces = count_pieces(docs)
    t1 = time.perf_counter()
    print(f"{sum(len(d) for d in docs) / 2**20:.1f} MB, {len(pieces):,} distinct pieces ({t1 - t0:.1f}s)")
    tok = train_bpe(pieces, args.merges)
    t2 = time.perf_counter()
    tok.save(args.out)
    print(f"learned {len(tok.merge_ranks):,} merges in {t2 - t1:.1f}s; vocab size {tok.vocab_size} -> {args.out}")
    if args.eval:
        text = args.eval.read_text(encoding="utf-8")
        ids = tok.encode(text, allowed_special={ENDOFTEXT})
        print(f"{args.eval.name}: {len(text.encode('utf-8')) / len(ids):.2f} bytes per token")


if __name__ == "__main__":
    main()
