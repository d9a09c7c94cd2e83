"""Byte-level BPE, the GPT-2 way.

Text becomes ids in three steps:

1. Pre-tokenize: the GPT-2 regex splits text into pieces (words with their
   leading space, runs of digits, runs of punctuation, runs of whitespace).
   Merges never cross a piece boundary.
2. Each piece is turned into its UTF-8 bytes; every byte is a token of its own.
3. Merge: repeatedly join the adjacent pair whose joined bytes have the lowest
   merge rank, until no adjacent pair is a known merge.

The vocabulary is a map from byte strings to ids. GPT-2's file format
(vocab.json + merges.txt) stores tokens as printable unicode strings, one
unicode character per byte (`bytes_to_unicode`); tiktoken's format stores
base64 byte strings with their rank. Both load into the same object.
"""

from __future__ import annotations

import base64
import codecs
import heapq
import json
import re
from collections import Counter, defaultdict
from itertools import chain
from pathlib import Path
from typing import Iterable

import regex

# GPT-2's pre-tokenization: contractions, letters, digits, other symbols,
# whitespace runs (a run followed by a word leaves its last space to that
# word: " foo", not "  foo"). GPT-2 wrote it as
#   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
# This is the same language, faster to match: the contractions share one
# leading quote, the optional space is tried once for the three runs, and
# the runs are possessive (++: never backtracked into, which could not
# change a match anyway). tests/test_tokenizer.py checks the equivalence.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?(?:\p{L}++|\p{N}++|[^\s\p{L}\p{N}]++)|\s+(?!\S)|\s+"""
GPT2_ORIGINAL_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
ENDOFTEXT = "<|endoftext|>"
CACHE_PIECES, CACHE_CHARS = 200_000, 4_000_000  # the piece cache's bounds

# On pure-ASCII text the same split can be done by Python's own `re`, which
# is several times faster than `regex` for small classes: in ASCII, \p{L}
# is [A-Za-z], \p{N} is [0-9] and \s is [\t\n\v\f\r ] (see the test
# test_ascii_pattern_splits_as_the_unicode_one).
ASCII_PATTERN = (r"""'(?:[sdmt]|ll|ve|re)| ?(?:[A-Za-z]+|[0-9]+|[^\t\n\x0b\x0c\r A-Za-z0-9]+)"""
                 r"""|[\t\n\x0b\x0c\r ]+(?![^\t\n\x0b\x0c\r ])|[\t\n\x0b\x0c\r ]+""")
# A piece always ends before a newline that follows a non-space character
# (no piece can hold both), so text can be cut there and each part split on
# its own: the ASCII parts then take the fast path.
SAFE_CUT = re.compile(r"(?<=\S)\n")


class TokenizerError(ValueError):
    """Bad tokenizer files or ids that are not in the vocabulary."""


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map from each byte to a printable unicode character.

    Printable Latin-1 bytes map to themselves; the rest (control bytes, space,
    ...) are moved to code points 256 and up, so every token is a visible string
    in vocab.json (a space becomes "Ġ", a newline "Ċ").
    """
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    chars = list(printable)
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, chars)}


class Tokenizer:
    """A byte-level BPE tokenizer.

    encoder:      token bytes -> id, for every token (bytes and merges)
    merge_ranks:  merged token bytes -> priority (lower merges first)
    special_tokens: text such as "<|endoftext|>" -> id; never produced by merges
    """

    def __init__(
        self,
        encoder: dict[bytes, int],
        merge_ranks: dict[bytes, int],
        special_tokens: dict[str, int] | None = None,
        pattern: str = GPT2_PATTERN,
    ):
        self.encoder = dict(encoder)
        self.merge_ranks = dict(merge_ranks)
        self.special_tokens = dict(special_tokens or {})
        self.pattern = pattern
        self._pieces = regex.compile(pattern)
        self._ascii_pieces = re.compile(ASCII_PATTERN) if pattern == GPT2_PATTERN else None
        self.decoder = {i: b for b, i in self.encoder.items()}
        for text, i in self.special_tokens.items():
            self.decoder[i] = text.encode("utf-8")
        if len(self.decoder) != len(self.encoder) + len(self.special_tokens):
            raise TokenizerError("two tokens share one id")
        self.vocab_size = max(self.decoder) + 1
        self._cache: dict[str, tuple[int, ...]] = {}
        self._cache_chars = 0

    # ----------------------------------------------------------------- encode

    def encode(self, text: str, allowed_special: Iterable[str] | str = ()) -> list[int]:
        """Text -> ids. Special tokens are recognised only if listed in
        `allowed_special` (or "all"); otherwise "<|endoftext|>" in the text is
        encoded as ordinary text, so user input cannot forge a control token."""
        if allowed_special == "all":
            allowed_special = self.special_tokens.keys()
        allowed = [s for s in allowed_special if s in self.special_tokens]
        if not allowed:
            return self.encode_ordinary(text)
        splitter = regex.compile("(" + "|".join(regex.escape(s) for s in allowed) + ")")
        ids: list[int] = []
        for i, part in enumerate(splitter.split(text)):
            # split() with one group alternates text, special, text, special...
            ids.extend([self.special_tokens[part]] if i % 2 else self.encode_ordinary(part))
        return ids

    def encode_ordinary(self, text: str) -> list[int]:
        """Text -> ids, treating every character as ordinary text.

        Most pieces repeat (" the", "    ", "fn"), so each distinct piece is
        merged once and remembered; the loop over pieces then runs in C
        (map + chain) instead of in Python."""
        pieces = self.pre_tokenize(text)
        # Bound the memory a long-running server spends on the cache, by pieces
        # and by characters (one piece can be a megabyte). A new dict, not
        # clear(): a concurrent call keeps the one it holds.
        if len(self._cache) > CACHE_PIECES or self._cache_chars > CACHE_CHARS:
            self._cache, self._cache_chars = {}, 0
        cache = self._cache
        for piece in set(pieces).difference(cache):
            cache[piece] = self._encode_piece(piece.encode("utf-8"))
            self._cache_chars += len(piece)
        return list(chain.from_iterable(map(cache.__getitem__, pieces)))

    def pre_tokenize(self, text: str, block: int = 4096) -> list[str]:
        """Split text into pieces with the pattern. With GPT-2's pattern, text is
        cut into blocks of about `block` characters at safe places, and
        blocks that are pure ASCII use the faster equivalent ASCII pattern."""
        if self._ascii_pieces is None:
            return self._pieces.findall(text)
        if text.isascii():
            return self._ascii_pieces.findall(text)
        pieces, start = [], 0
        while start < len(text):
            cut = SAFE_CUT.search(text, start + block) if start + block < len(text) else None
            end = cut.start() if cut else len(text)
            part = text[start:end]
            pieces += (self._ascii_pieces if part.isascii() else self._pieces).findall(part)
            start = end
        return pieces

    def _encode_piece(self, piece: bytes) -> tuple[int, ...]:
        whole = self.encoder.get(piece)
        if whole is not None:  # as tiktoken does: a piece that is a token is one id
            return (whole,)
        return tuple(self.encoder[part] for part in bpe(piece, self.merge_ranks))

    # ----------------------------------------------------------------- decode

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        try:
            return b"".join(self.decoder[i] for i in ids)
        except KeyError as e:
            raise TokenizerError(
                f"token id {e.args[0]} is not in the vocabulary (ids are 0..{self.vocab_size - 1})"
            ) from None

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> text. Byte sequences that are not valid UTF-8 become U+FFFD."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def stream_decoder(self) -> "StreamDecoder":
        return StreamDecoder(self)

    def token_bytes(self, i: int) -> bytes:
        found = self.decoder.get(i)
        return found if found is not None else self.decode_bytes([i])  # which says why it is not there

    # ------------------------------------------------------------------ files

    @classmethod
    def from_dir(cls, path: str | Path) -> "Tokenizer":
        """Load a Hugging Face GPT-2 folder: vocab.json + merges.txt.

        Tokens of vocab.json that merges.txt does not build (such as
        "<|endoftext|>") are the special tokens."""
        path = Path(path)
        vocab_file, merges_file = path / "vocab.json", path / "merges.txt"
        for f in (vocab_file, merges_file):
            if not f.is_file():
                raise TokenizerError(f"tokenizer file not found: {f}")
        try:
            vocab = json.loads(vocab_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise TokenizerError(f"{vocab_file} is not valid JSON: {e}") from None
        byte_of = {c: b for b, c in bytes_to_unicode().items()}

        def to_bytes(token: str, where: str) -> bytes:
            try:
                return bytes(byte_of[c] for c in token)
            except KeyError:
                raise TokenizerError(f"{where}: {token!r} is not in GPT-2's byte alphabet") from None

        merge_ranks: dict[bytes, int] = {}
        lines = merges_file.read_text(encoding="utf-8").splitlines()
        for lineno, line in enumerate(lines, start=1):
            if not line or line.startswith("#version"):
                continue
            parts = line.split(" ")
            if len(parts) != 2:
                raise TokenizerError(f"{merges_file}:{lineno}: expected two tokens, got {line!r}")
            merged = to_bytes(parts[0], f"{merges_file}:{lineno}") + to_bytes(parts[1], f"{merges_file}:{lineno}")
            merge_ranks.setdefault(merged, len(merge_ranks))

        encoder, special = {}, {}
        for token, i in vocab.items():
            if all(c in byte_of for c in token) and (len(token) == 1 or to_bytes(token, "") in merge_ranks):
                encoder[to_bytes(token, str(vocab_file))] = i
            else:
                special[token] = i
        missing = [m for m in merge_ranks if m not in encoder]
        if missing:
            raise TokenizerError(f"{merges_file}: merge result {missing[0]!r} is not in {vocab_file}")
        return cls(encoder, merge_ranks, special)

    @classmethod
    def from_tiktoken(cls, path: str | Path, special_tokens: dict[str, int] | None = None,
                      pattern: str = GPT2_PATTERN) -> "Tokenizer":
        """Load a tiktoken ranks file: one "base64(token) rank" per line.
        The rank is both the id and the merge priority."""
        path = Path(path)
        if not path.is_file():
            raise TokenizerError(f"tokenizer file not found: {path}")
        ranks = {}
        for lineno, line in enumerate(path.read_text().splitlines(), start=1):
            if not line:
                continue
            try:
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
            except ValueError:
                raise TokenizerError(f"{path}:{lineno}: expected 'base64 rank', got {line!r}") from None
        merges = {b: r for b, r in ranks.items() if len(b) > 1}
        return cls(ranks, merges, special_tokens, pattern)

    def save(self, path: str | Path) -> None:
        """Write vocab.json and merges.txt (the Hugging Face GPT-2 format)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        char_of = bytes_to_unicode()

        def to_text(b: bytes) -> str:
            return "".join(char_of[x] for x in b)

        vocab = {to_text(b): i for b, i in self.encoder.items()}
        vocab.update(self.special_tokens)
        vocab = dict(sorted(vocab.items(), key=lambda kv: kv[1]))
        (path / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        lines = ["#version: 0.2"]
        for merged in sorted(self.merge_ranks, key=self.merge_ranks.get):
            left, right = self.merge_pair(merged)
            lines.append(f"{to_text(left)} {to_text(right)}")
        (path / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")

    def merge_pair(self, merged: bytes) -> tuple[bytes, bytes]:
        """The two tokens a merged token is made of: BPE over its bytes using
        only the merges ranked before it stops at exactly two parts."""
        parts = bpe(merged, self.merge_ranks, below=self.merge_ranks[merged])
        if len(parts) != 2:
            raise TokenizerError(f"token {merged!r} is not the merge of two earlier tokens")
        return parts[0], parts[1]


def bpe(piece: bytes, merge_ranks: dict[bytes, int], below: int | None = None) -> list[bytes]:
    """Merge the bytes of one piece, lowest rank first (leftmost on ties).

    >>> bpe(b"aaab", {b"aa": 0, b"ab": 1})
    [b'aa', b'ab']

    The rule is the simple loop "find the best adjacent pair, join it, repeat",
    but that loop rescans every pair after every merge: O(n^2) for a piece of
    n bytes, and one piece can be a whole request (a megabyte of spaces is one
    piece). So the candidate pairs wait in a heap ordered by (rank, position),
    which gives the same best pair each time, and the parts form a linked
    list, so a merge touches only its two neighbours: O(n log n).

    parts[i] is the token that starts at byte i (None once it was joined onto
    its left neighbour); nxt/prv link the live parts. A heap entry goes stale
    when either of its parts changed; it is skipped when popped (the pair that
    is there now is checked against the rank the entry carries). `below`
    ignores merges of that rank or later (used by `Tokenizer.merge_pair`).
    """
    n = len(piece)
    parts: list[bytes | None] = [piece[i:i + 1] for i in range(n)] + [None]  # a None sentinel at n
    nxt, prv = list(range(1, n + 2)), list(range(-1, n))

    rank = merge_ranks.get  # joined bytes -> rank, or None
    if below is not None:
        rank = lambda joined: r if (r := merge_ranks.get(joined)) is not None and r < below else None  # noqa: E731

    heap = [(r, i) for i in range(n - 1) if (r := rank(piece[i:i + 2])) is not None]
    heapq.heapify(heap)
    while heap:
        r, i = heapq.heappop(heap)
        left, j = parts[i], nxt[i]
        if left is None or parts[j] is None or rank(left + parts[j]) != r:
            continue  # stale: one side was merged away or grew since this entry was pushed
        parts[i] = left = left + parts[j]
        parts[j] = None
        k = nxt[i] = nxt[j]
        prv[k] = i
        if parts[k] is not None and (r := rank(left + parts[k])) is not None:
            heapq.heappush(heap, (r, i))
        if (p := prv[i]) >= 0 and (r := rank(parts[p] + left)) is not None:
            heapq.heappush(heap, (r, p))
    return [part for part in parts if part is not None]


class StreamDecoder:
    """Ids in, text out, one id at a time, never half a UTF-8 character.

    A token may end in the middle of a multi-byte character (emoji are often
    split over two or three tokens). The incremental UTF-8 decoder keeps those
    bytes until the character is complete; bytes that can never form a
    character become U+FFFD, exactly as `Tokenizer.decode` does, so joining
    every piece (and `flush()`) equals decoding all the ids at once.
    """

    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer = tokenizer
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, token_id: int) -> str:
        return self._utf8.decode(self.tokenizer.token_bytes(token_id))

    def flush(self) -> str:
        return self._utf8.decode(b"", final=True)


# ---------------------------------------------------------------------- train

def train_bpe(text_pieces: Counter, n_merges: int, special_tokens: Iterable[str] = (ENDOFTEXT,),
              pattern: str = GPT2_PATTERN, min_count: int = 2) -> Tokenizer:
    """Learn `n_merges` merges from pre-tokenized text.

    text_pieces: Counter of pre-tokenized pieces (see `count_pieces`).
    Ids: bytes are 0..255, merge i is 256 + i, special tokens follow.

    Each round merges the most frequent adjacent pair; ties go to the pair
    whose (left id, right id) is smallest, so training is deterministic.
    Pair counts are updated incrementally: only the words that contain the
    merged pair are revisited, which is what makes thousands of merges cheap.
    """
    words = [list(p.encode("utf-8")) for p in text_pieces]
    freqs = list(text_pieces.values())
    token_bytes = [bytes([b]) for b in range(256)]

    pair_counts: dict[tuple[int, int], int] = defaultdict(int)
    where: dict[tuple[int, int], set[int]] = defaultdict(set)  # pair -> words holding it
    for w, (word, freq) in enumerate(zip(words, freqs)):
        for pair in zip(word, word[1:]):
            pair_counts[pair] += freq
            where[pair].add(w)
    heap = [(-c, pair) for pair, c in pair_counts.items()]
    heapq.heapify(heap)

    merge_ranks: dict[bytes, int] = {}
    while len(merge_ranks) < n_merges and heap:
        neg_count, pair = heapq.heappop(heap)
        if -neg_count != pair_counts.get(pair, 0):
            continue  # stale entry: the count changed since it was pushed
        if -neg_count < min_count:
            break
        new_id = len(token_bytes)
        token_bytes.append(token_bytes[pair[0]] + token_bytes[pair[1]])
        merge_ranks[token_bytes[new_id]] = len(merge_ranks)
        changed = set()
        for w in where.pop(pair):
            word, freq = words[w], freqs[w]
            for p in zip(word, word[1:]):
                pair_counts[p] -= freq
                changed.add(p)
            words[w] = word = merge_word(word, pair, new_id)
            for p in zip(word, word[1:]):
                pair_counts[p] += freq
                where[p].add(w)
                changed.add(p)
        for p in changed:
            if pair_counts[p] > 0:
                heapq.heappush(heap, (-pair_counts[p], p))
            else:
                pair_counts.pop(p, None)
        pair_counts.pop(pair, None)

    encoder = {b: i for i, b in enumerate(token_bytes)}
    special = {s: len(token_bytes) + k for k, s in enumerate(special_tokens)}
    return Tokenizer(encoder, merge_ranks, special, pattern)


def merge_word(word: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace every non-overlapping occurrence of `pair`, left to right."""
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and word[i] == pair[0] and word[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out


def count_pieces(texts: Iterable[str], pattern: str = GPT2_PATTERN) -> Counter:
    """Pre-tokenize texts and count each distinct piece."""
    split = regex.compile(pattern).findall
    counts: Counter = Counter()
    for text in texts:
        counts.update(split(text))
    return counts
