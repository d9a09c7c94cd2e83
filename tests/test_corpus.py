"""The corpus builder keeps the reserved crates out of training and validation,
splits by crate, and drops repeated files (scripts/build_corpus.py)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import build_corpus
from build_corpus import SEPARATOR, Source, build, is_reserved, read_packages, split_of

# The list, spelled as the crates spell themselves on crates.io.
RESERVED = ["anyhow", "bitflags", "bytes", "clap", "either", "hashbrown", "indexmap", "itertools", "log", "memchr",
            "once_cell", "rand", "rand_chacha", "rand_core", "regex", "regex-automata", "regex-syntax", "serde",
            "serde_derive", "serde_json", "smallvec", "thiserror"]


@pytest.mark.parametrize("crate", RESERVED + ["clap_derive", "clap_lex", "clap-complete", "Serde", "regex_syntax"])
def test_reserved_crates_are_recognised_in_either_spelling(crate):
    assert is_reserved(crate)


@pytest.mark.parametrize("crate", ["serde_yaml", "logos", "bytesize", "randomize", "memchr2", "clapme", "anyhow2"])
def test_other_crates_are_not_reserved(crate):
    assert not is_reserved(crate)


def written(out: Path, split: str) -> list[str]:
    return [doc for shard in sorted(out.glob(f"{split}-*.txt"))
            for doc in shard.read_text(encoding="utf-8").split(SEPARATOR) if doc]


def test_no_reserved_file_reaches_training_or_validation(tmp_path):
    reserved_text = b"pub fn from_str<T>(s: &str) -> Result<T> { todo!() }\n"
    val_crate = next(c for c in (f"crate{i}" for i in range(1000)) if split_of(c, 10.0) == "val")
    train_crate = next(c for c in (f"crate{i}" for i in range(1000)) if split_of(c, 10.0) == "train")
    sources = [Source(crate, f"{crate}-1.0.0/src/lib.rs", reserved_text) for crate in ("serde_json", "clap_lex")]
    sources += [Source("serde", "serde-1.0.152/src/de.rs", b"pub trait Deserialize {}\n"),
                # a crate that vendors a reserved crate's file: the copy stays out too
                Source(train_crate, f"{train_crate}-0.1.0/src/vendored.rs", reserved_text),
                Source(val_crate, f"{val_crate}-0.1.0/src/vendored.rs", reserved_text),
                Source(train_crate, f"{train_crate}-0.1.0/src/lib.rs", b"fn train() {}\n"),
                Source(train_crate, f"{train_crate}-0.2.0/src/lib.rs", b"fn train() {}\n"),  # a second version
                Source(val_crate, f"{val_crate}-0.1.0/src/lib.rs", b"fn val() {}\n"),
                Source(train_crate, f"{train_crate}-0.1.0/src/shared.rs", b"fn shared() {}\n"),
                Source(val_crate, f"{val_crate}-0.1.0/src/shared.rs", b"fn shared() {}\n")]
    by_split = {}
    for source in sorted(sources, key=lambda s: (s.crate, s.path)):
        by_split.setdefault(split_of(source.crate, 10.0), []).append(source)
    summary = build(by_split, tmp_path, shard_bytes=1 << 20, max_bytes=1 << 20)

    assert sorted(written(tmp_path, "reserved")) == sorted([reserved_text.decode(), "pub trait Deserialize {}\n"])
    assert sorted(written(tmp_path, "val")) == ["fn shared() {}\n", "fn val() {}\n"]
    assert written(tmp_path, "train") == ["fn train() {}\n"]  # its second version and the shared file: dropped
    assert summary["duplicates"] == 5


def test_every_version_of_a_crate_lands_in_the_same_split():
    for crate in ("tokio", "nom", "syn", "serde"):
        assert split_of(crate, 3.0) == split_of(crate.upper(), 3.0) == split_of(crate.replace("_", "-"), 3.0)


def test_the_package_list_in_the_repository_is_what_the_build_reads():
    packages = read_packages(Path(build_corpus.__file__).parent / "corpus_packages.txt")
    assert len(packages) > 1000
    assert all(p.name.startswith("librust-") and p.name.endswith("-dev") for p in packages)
    assert len({p.name for p in packages}) == len(packages)
    reserved_packages = {p.name for p in packages if is_reserved(p.name[len("librust-"):-len("-dev")])}
    assert {"librust-serde-dev", "librust-anyhow-dev", "librust-clap-dev"} <= reserved_packages


@pytest.mark.parametrize("expression, kind", [
    ("MIT", "permissive"), ("MIT/Apache-2.0", "permissive"), ("Apache-2.0 OR MIT", "permissive"),
    ("(Apache-2.0 OR MIT) AND BSD-3-Clause", "permissive"), ("Apache-2.0 WITH LLVM-exception", "permissive"),
    ("LGPL-3.0-or-later OR MIT", "permissive"), ("MPL-2.0", "weak copyleft (MPL, LGPL, EPL)"),
    ("LGPL-2.1", "weak copyleft (MPL, LGPL, EPL)"),
    ("GPL-2.0 OR GPL-3.0 OR LGPL-3.0", "weak copyleft (MPL, LGPL, EPL)"),
    ("GPL-3.0+", "GPL"), ("unknown", "unknown")])
def test_a_package_is_counted_by_its_most_permissive_licence(expression, kind):
    assert build_corpus.licence_kind(expression) == kind
