"""Build the Rust training corpus from folders of .rs files.

    apt-get download rust-src && dpkg -x rust-src_*.deb /tmp/rust-src
    python scripts/build_corpus.py /tmp/rust-src/usr/src/rustc-* --out corpus/

Deterministic: files are read in sorted path order, exact duplicates (same
content) are dropped, and a file goes to validation when the SHA-1 of its
path relative to its input folder falls in the lowest `--val-percent`. Files
are joined with "<|endoftext|>" into plain-text shards of about `--shard-mb`.
"""

import argparse
import hashlib
import json
from pathlib import Path

SEPARATOR = "<|endoftext|>"


def rust_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.rs") if p.is_file())


def is_validation(rel_path: str, val_percent: float) -> bool:
    h = int(hashlib.sha1(rel_path.encode("utf-8")).hexdigest(), 16)
    return (h % 10_000) < val_percent * 100


def read_source(path: Path, max_bytes: int) -> str | None:
    data = path.read_bytes()
    if not data.strip() or len(data) > max_bytes:
        return None  # empty, or generated/huge test data
    try:
        return data.decode("utf-8").replace("\r\n", "\n")
    except UnicodeDecodeError:
        return None


class ShardWriter:
    def __init__(self, out: Path, split: str, shard_bytes: int):
        self.out, self.split, self.shard_bytes = out, split, shard_bytes
        self.texts, self.size, self.shards, self.files, self.total = [], 0, 0, 0, 0

    def add(self, text: str) -> None:
        self.texts.append(text)
        self.size += len(text.encode("utf-8"))
        self.files += 1
        if self.size >= self.shard_bytes:
            self.flush()

    def flush(self) -> None:
        if self.texts:
            body = SEPARATOR.join(self.texts) + SEPARATOR
            (self.out / f"{self.split}-{self.shards:03d}.txt").write_text(body, encoding="utf-8")
            self.total += len(body.encode("utf-8"))
            self.shards += 1
            self.texts, self.size = [], 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="+", type=Path, help="folders searched for .rs files")
    ap.add_argument("--out", type=Path, default=Path("corpus"))
    ap.add_argument("--val-percent", type=float, default=2.0)
    ap.add_argument("--shard-mb", type=float, default=16.0)
    ap.add_argument("--max-file-kb", type=int, default=256)
    args = ap.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    writers = {s: ShardWriter(args.out, s, int(args.shard_mb * 2**20)) for s in ("train", "val")}
    seen, duplicates, skipped = set(), 0, 0
    for root in args.inputs:
        for path in rust_files(root):
            text = read_source(path, args.max_file_kb * 1024)
            if text is None:
                skipped += 1
                continue
            digest = hashlib.sha256(text.encode("utf-8")).digest()
            if digest in seen:
                duplicates += 1
                continue
            seen.add(digest)
            rel = path.relative_to(root).as_posix()
            writers["val" if is_validation(rel, args.val_percent) else "train"].add(text)
    for w in writers.values():
        w.flush()
    summary = {s: {"files": w.files, "bytes": w.total, "shards": w.shards} for s, w in writers.items()}
    summary.update(duplicates=duplicates, skipped=skipped)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
