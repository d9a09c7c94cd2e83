"""Build the Rust corpus: the crates of Debian's librust-*-dev packages, plus the Rust compiler's sources.

    apt-get download rust-src && dpkg -x rust-src_*.deb /tmp/rust-src
    python scripts/build_corpus.py --packages scripts/corpus_packages.txt --debs build/debs \\
        --rustc /tmp/rust-src/usr/src/rustc-1.63.0 --out corpus
    python scripts/build_corpus.py --write-packages scripts/corpus_packages.txt --debs build/debs
    python scripts/build_corpus.py --licences     # the model card's licence table

The list (scripts/corpus_packages.txt: package, version, licence) is kept in
the repository; --write-packages refreshes it from apt. Packages missing
from --debs are fetched with `apt-get download package=version`, and each is
read straight from `dpkg-deb --fsys-tarfile` (nothing is unpacked to disk).

Splits, by crate name (every version of a crate goes to the same one):
- reserved: the crates in RESERVED, kept for independent evaluation; never in
  training or validation, and neither is any file with the same content;
- val: whole crates whose name's SHA-1 falls in the lowest --val-percent;
- train: the other crates, and the compiler's sources.
Files are deduplicated by content across crates and versions, the splits
read in that order (reserved, val, train) so that a file shared between
splits stays in the first. Deterministic: crates, versions and paths are read
in sorted order. Each split is written as text shards joined with
"<|endoftext|>", with summary.json beside them.
"""

import argparse
import hashlib
import io
import json
import re
import subprocess
import tarfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

SEPARATOR = "<|endoftext|>"
SPLITS = ("reserved", "val", "train")  # the order files are claimed in
RESERVED = {"anyhow", "bitflags", "bytes", "clap", "either", "hashbrown", "indexmap", "itertools", "log", "memchr",
            "once_cell", "rand", "rand_chacha", "rand_core", "regex", "regex_automata", "regex_syntax", "serde",
            "serde_derive", "serde_json", "smallvec", "thiserror"}
CRATE_FILE = re.compile(r"^\./usr/share/cargo/registry/(?P<crate>[^/]+?)-(?P<version>\d+\.\d+\.\d+[^/]*)/"
                        r"(?P<path>.+\.rs)$")
CARGO_TOML = re.compile(r"^\./usr/share/cargo/registry/[^/]+/Cargo\.toml$")
LICENSE = re.compile(r'^license\s*=\s*"([^"]*)"', re.MULTILINE)


def is_reserved(crate: str) -> bool:
    """Crate names are compared as Cargo compares them: '-' and '_' alike. Every clap_* crate too."""
    name = crate.lower().replace("-", "_")
    return name in RESERVED or name.startswith("clap_")


def split_of(crate: str, val_percent: float) -> str:
    if is_reserved(crate):
        return "reserved"
    h = int(hashlib.sha1(crate.lower().replace("-", "_").encode("utf-8")).hexdigest(), 16)
    return "val" if (h % 10_000) < val_percent * 100 else "train"


@dataclass(frozen=True)
class Source:
    crate: str  # "rustc" for the compiler's sources
    path: str  # within the crate, with its version: "serde-1.0.152/src/de/mod.rs"
    data: bytes


# ------------------------------------------------------------------ reading


def deb_members(deb: Path) -> Iterator[tuple[str, bytes]]:
    """(path, content) of each regular file in a .deb's data archive."""
    archive = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar:
            if member.isfile():
                yield member.name, tar.extractfile(member).read()


def deb_sources(deb: Path) -> Iterator[Source]:
    for name, data in deb_members(deb):
        if m := CRATE_FILE.match(name):
            yield Source(m["crate"], f"{m['crate']}-{m['version']}/{m['path']}", data)


def deb_license(deb: Path) -> str:
    for name, data in deb_members(deb):
        if CARGO_TOML.match(name) and (m := LICENSE.search(data.decode("utf-8", "replace"))):
            return m[1]
    return "unknown"


def folder_sources(root: Path, crate: str) -> Iterator[Source]:
    for path in sorted(p for p in root.rglob("*.rs") if p.is_file()):
        yield Source(crate, path.relative_to(root).as_posix(), path.read_bytes())


def decode_source(data: bytes, max_bytes: int) -> str | None:
    if not data.strip() or len(data) > max_bytes:
        return None  # empty, or generated/huge test data
    try:
        return data.decode("utf-8").replace("\r\n", "\n")
    except UnicodeDecodeError:
        return None


# ------------------------------------------------------------------ writing


class ShardWriter:
    def __init__(self, out: Path, split: str, shard_bytes: int):
        self.out, self.split, self.shard_bytes = out, split, shard_bytes
        self.texts, self.size, self.shards, self.files, self.total = [], 0, 0, 0, 0
        self.crates: set[str] = set()

    def add(self, crate: str, text: str) -> None:
        self.texts.append(text)
        self.crates.add(crate)
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

    def summary(self) -> dict:
        return {"files": self.files, "bytes": self.total, "shards": self.shards, "crates": len(self.crates)}


def build(sources_by_split: dict[str, Iterable[Source]], out: Path, shard_bytes: int, max_bytes: int) -> dict:
    """Write each split's deduplicated files; the splits claim files in SPLITS order."""
    out.mkdir(parents=True, exist_ok=True)
    seen, counts = set(), Counter()
    writers = {}
    for split in SPLITS:
        writer = writers[split] = ShardWriter(out, split, shard_bytes)
        for source in sources_by_split.get(split, ()):
            text = decode_source(source.data, max_bytes)
            if text is None:
                counts["skipped"] += 1
                continue
            digest = hashlib.sha256(text.encode("utf-8")).digest()
            if digest in seen:
                counts["duplicates"] += 1
                continue
            seen.add(digest)
            writer.add(source.crate, text)
        writer.flush()
    summary = {split: w.summary() for split, w in writers.items()} | dict(counts)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


# ------------------------------------------------------------------ packages


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    license: str

    def deb(self, debs: Path) -> Path:
        matches = sorted(debs.glob(f"{self.name}_{self.version.split(':')[-1]}_*.deb"))
        if not matches:
            subprocess.run(["apt-get", "download", "-q", f"{self.name}={self.version}"], cwd=debs, check=True)
            matches = sorted(debs.glob(f"{self.name}_{self.version.split(':')[-1]}_*.deb"))
        return matches[0]


def read_packages(path: Path) -> list[Package]:
    packages = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, version, license = line.split(maxsplit=2)
            packages.append(Package(name, version, license))
    return packages


def write_packages(path: Path, debs: Path) -> None:
    """Every real librust-*-dev package apt knows (not the '+feature' ones, which hold no files)."""
    names = subprocess.run(["apt-cache", "pkgnames", "librust-"], capture_output=True, text=True, check=True).stdout
    names = sorted(n for n in names.split() if n.endswith("-dev") and "+" not in n)
    policy = subprocess.run(["apt-cache", "show", "--no-all-versions", *names], capture_output=True, text=True,
                            check=True).stdout
    versions = dict(re.findall(r"^Package: (\S+)\n(?:.*\n)*?Version: (\S+)", policy, re.MULTILINE))
    lines = ["# package version licence (the crate's Cargo.toml); scripts/build_corpus.py reads this list"]
    for name in names:
        package = Package(name, versions[name], "")
        lines.append(f"{name} {package.version} {deb_license(package.deb(debs))}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


PERMISSIVE = {"MIT", "MIT-0", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "ISC", "Zlib", "0BSD", "Unlicense",
              "CC0-1.0", "BSL-1.0", "WTFPL", "MirOS", "MITNFA", "FTL"}
LICENCE_KINDS = ("permissive", "weak copyleft (MPL, LGPL, EPL)", "GPL", "unknown")


def licence_kind(expression: str) -> str:
    """The most permissive way to take a package: any permissive alternative of an OR
    (Cargo's old "MIT/Apache-2.0" is an OR too) makes it permissive."""
    alternatives = [a.strip(" ()") for a in re.split(r"\s+OR\s+|/", expression)]
    if any(a.split(" WITH ")[0] in PERMISSIVE for a in alternatives):
        return LICENCE_KINDS[0]
    if any(a.startswith(("MPL", "LGPL", "EPL")) for a in alternatives):
        return LICENCE_KINDS[1]
    return LICENCE_KINDS[2] if any(a.startswith("GPL") for a in alternatives) else LICENCE_KINDS[3]


def print_licences(packages: list[Package]) -> None:
    """The model card's licence table: packages by kind of licence, naming the ones not permissive."""
    by_kind = {kind: [p for p in packages if licence_kind(p.license) == kind] for kind in LICENCE_KINDS}
    print("| licence | packages | which |")
    print("| --- | --- | --- |")
    for kind, members in by_kind.items():
        names = "" if kind == LICENCE_KINDS[0] else ", ".join(p.name.removeprefix("librust-").removesuffix("-dev")
                                                               for p in members)
        print(f"| {kind} | {len(members)} | {names} |")


def crate_sources(packages: list[Package], debs: Path, val_percent: float) -> dict[str, list[Source]]:
    """Every crate file, by split, sorted by crate, version and path."""
    by_split = {split: [] for split in SPLITS}
    for package in packages:
        for source in deb_sources(package.deb(debs)):
            by_split[split_of(source.crate, val_percent)].append(source)
    return {split: sorted(sources, key=lambda s: (s.crate, s.path)) for split, sources in by_split.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packages", type=Path, default=Path("scripts/corpus_packages.txt"))
    ap.add_argument("--debs", type=Path, default=Path("build/debs"), help="where the .deb files are kept")
    ap.add_argument("--rustc", type=Path, help="the compiler's sources (rust-src), added to training")
    ap.add_argument("--out", type=Path, default=Path("corpus"))
    ap.add_argument("--val-percent", type=float, default=3.0)
    ap.add_argument("--shard-mb", type=float, default=16.0)
    ap.add_argument("--max-file-kb", type=int, default=256)
    ap.add_argument("--write-packages", type=Path, help="write the package list from apt and stop")
    ap.add_argument("--licences", action="store_true", help="print the packages by kind of licence and stop")
    args = ap.parse_args()

    args.debs.mkdir(parents=True, exist_ok=True)
    if args.write_packages:
        return write_packages(args.write_packages, args.debs)
    if args.licences:
        return print_licences(read_packages(args.packages))
    sources = crate_sources(read_packages(args.packages), args.debs, args.val_percent)
    if args.rustc:
        sources["train"] += folder_sources(args.rustc, "rustc")
    summary = build(sources, args.out, int(args.shard_mb * 2**20), args.max_file_kb * 1024)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
