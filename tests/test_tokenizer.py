"""The tokenizer against tiktoken (an independent BPE) built from the same ranks."""

import base64
import json
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import regex

from inference.tokenizer import (ENDOFTEXT, GPT2_ORIGINAL_PATTERN, GPT2_PATTERN, Tokenizer, TokenizerError, bpe,
                                 bytes_to_unicode, count_pieces, train_bpe)
from text_corpus import RUST_SAMPLE, varied_text

tiktoken = pytest.importorskip("tiktoken")


def as_tiktoken(tok: Tokenizer) -> "tiktoken.Encoding":
    """tiktoken ranks are ids; our ids are ranked in merge order, so the same map works."""
    order = sorted(tok.merge_ranks, key=tok.merge_ranks.get)
    assert [tok.encoder[m] for m in order] == sorted(tok.encoder[m] for m in order)
    return tiktoken.Encoding("under-test", pat_str=GPT2_PATTERN, mergeable_ranks=tok.encoder,
                             special_tokens=tok.special_tokens)


@pytest.fixture(scope="module")
def varied():
    return varied_text(1 << 20, seed=1)


@pytest.fixture(scope="module")
def trained(varied):
    """A vocabulary learned from the varied corpus itself, so CJK, emoji and
    combining marks get merges of their own (the shipped one is mostly Rust)."""
    return train_bpe(count_pieces([varied]), n_merges=1500)


def test_our_pattern_splits_exactly_as_gpt2s_original(varied):
    assert regex.findall(GPT2_PATTERN, varied) == regex.findall(GPT2_ORIGINAL_PATTERN, varied)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(" \t\n\r'sdmtlvreSDMTLVRE0123456789aZ_é日😀.,;:!?()\u0301\u00a0"))))
def test_our_pattern_splits_as_gpt2s_original_on_tricky_text(text):
    assert regex.findall(GPT2_PATTERN, text) == regex.findall(GPT2_ORIGINAL_PATTERN, text)


ASCII_AND_FRIENDS = [chr(i) for i in range(128)] + list("é日😀\u0301\u00a0\u0085\u2028\u3000½²")


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(ASCII_AND_FRIENDS)), st.integers(1, 40))
def test_ascii_fast_path_and_safe_cuts_split_as_the_unicode_pattern(shipped_tokenizer, text, block):
    assert shipped_tokenizer.pre_tokenize(text, block=block) == regex.findall(GPT2_PATTERN, text)


def test_ascii_pattern_splits_as_the_unicode_one(varied):
    import re
    from inference.tokenizer import ASCII_PATTERN
    ascii_text = varied.encode("ascii", "ignore").decode() + "".join(map(chr, range(128))) * 3
    assert re.findall(ASCII_PATTERN, ascii_text) == regex.findall(GPT2_PATTERN, ascii_text)


def test_bytes_to_unicode_is_a_bijection_onto_printable_chars():
    table = bytes_to_unicode()
    assert sorted(table) == list(range(256))
    assert len(set(table.values())) == 256
    assert all(c.isprintable() and not c.isspace() for c in table.values())
    assert table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ" and table[ord("A")] == "A"


@pytest.mark.parametrize("vocab", ["shipped", "trained"])
def test_identical_ids_to_tiktoken_on_a_megabyte(vocab, shipped_tokenizer, trained, varied):
    tok = shipped_tokenizer if vocab == "shipped" else trained
    enc = as_tiktoken(tok)
    assert len(varied.encode("utf-8")) >= 1 << 20
    ours = tok.encode(varied)
    assert ours == enc.encode_ordinary(varied)
    assert tok.decode(ours) == varied


def test_identical_ids_on_rust_source(shipped_tokenizer):
    text = RUST_SAMPLE.read_text(encoding="utf-8")
    assert shipped_tokenizer.encode(text) == as_tiktoken(shipped_tokenizer).encode_ordinary(text)


@pytest.mark.parametrize("text", ["", " ", "a", "\n", "\t", "é", "😀", "日", "\u0301", "\x00", "\r\n",
                                  "  ", "don't", "DON'T", "12345", "<|endoftext|>"])
def test_small_inputs_match_tiktoken_and_round_trip(text, trained):
    assert trained.encode(text) == as_tiktoken(trained).encode_ordinary(text)
    assert trained.decode(trained.encode(text)) == text


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_round_trip_and_parity_on_arbitrary_unicode(trained, text):
    ids = trained.encode(text)
    assert trained.decode(ids) == text
    assert ids == as_tiktoken(trained).encode_ordinary(text)


def test_special_tokens_only_when_allowed(shipped_tokenizer):
    tok = shipped_tokenizer
    eot = tok.special_tokens[ENDOFTEXT]
    text = "fn a() {}<|endoftext|>fn b() {}"
    assert eot not in tok.encode(text)
    with_special = tok.encode(text, allowed_special={ENDOFTEXT})
    assert with_special.count(eot) == 1
    assert with_special == as_tiktoken(tok).encode(text, allowed_special={ENDOFTEXT})
    assert tok.encode(text, allowed_special="all") == with_special
    assert tok.decode(with_special) == text


def test_unknown_ids_raise_a_clear_error(shipped_tokenizer):
    with pytest.raises(TokenizerError, match=r"token id 99999 is not in the vocabulary \(ids are 0\.\.4095\)"):
        shipped_tokenizer.decode([1, 99999])
    with pytest.raises(TokenizerError, match="-1"):
        shipped_tokenizer.decode([-1])


def test_stream_decoder_never_emits_half_a_character(trained):
    text = "héllo 😀 日本 👨‍👩‍👧‍👦 e\u0301 🦀 done"
    ids = trained.encode(text)
    assert any(len(trained.token_bytes(i).decode("utf-8", "ignore")) == 0 for i in ids), \
        "the test needs a token that is part of a character"
    dec = trained.stream_decoder()
    pieces = [dec.feed(i) for i in ids]
    assert all("\ufffd" not in p for p in pieces)
    assert "".join(pieces) + dec.flush() == text


def test_stream_decoder_matches_decode_on_invalid_utf8(shipped_tokenizer):
    tok = shipped_tokenizer
    ids = [tok.encoder[b"\xe6"], tok.encoder[b"a"], tok.encoder[b"\xf0"], tok.encoder[b"\x9f"]]
    dec = tok.stream_decoder()
    assert "".join(dec.feed(i) for i in ids) + dec.flush() == tok.decode(ids)


def test_bpe_merges_lowest_rank_first_leftmost_on_ties():
    ranks = {b"ab": 0, b"bc": 1, b"abc": 2}
    assert bpe(b"abc", ranks) == [b"abc"]
    assert bpe(b"bcab", {b"ab": 1, b"bc": 0}) == [b"bc", b"ab"]
    assert bpe(b"aaa", {b"aa": 0}) == [b"aa", b"a"]


class CountingRanks(dict):
    """Merge ranks that count their lookups: the work BPE does."""
    lookups = 0

    def get(self, key, default=None):
        self.lookups += 1
        return super().get(key, default)


@pytest.mark.parametrize("char", [" ", "a", "=", "1"])
def test_bpe_work_grows_as_n_log_n_on_a_run_of_one_character(shipped_tokenizer, char):
    """One piece can be a whole request (a run of spaces or letters is one
    piece). Rescanning every pair after every merge is quadratic: 16,000
    spaces took 20 s. The lookups per byte must stay flat as the run grows."""
    per_byte = []
    for n in (1_000, 16_000):
        ranks = CountingRanks(shipped_tokenizer.merge_ranks)
        bpe((char * n).encode(), ranks)
        per_byte.append(ranks.lookups / n)
    assert per_byte[1] < 6 and per_byte[1] < 1.5 * per_byte[0], per_byte


@pytest.mark.parametrize("vocab", ["shipped", "trained"])
def test_long_runs_match_tiktoken(vocab, shipped_tokenizer, trained):
    tok = shipped_tokenizer if vocab == "shipped" else trained
    enc = as_tiktoken(tok)
    for char in [" ", "a", "=", "1", "\t", "\n", "é", "日"]:
        for n in (7, 129, 5_003):
            assert tok.encode(char * n) == enc.encode_ordinary(char * n), (char, n)
    text = "x = " + "=" * 999 + "  " * 700 + "ab" * 3_001 + "\n" * 300 + "fn"
    assert tok.encode(text) == enc.encode_ordinary(text)


def test_the_piece_cache_is_bounded_in_characters_too(monkeypatch, shipped_tokenizer):
    """A run of a million spaces is one piece: counting pieces alone would let
    200,000 such requests fill the memory."""
    import inference.tokenizer
    monkeypatch.setattr(inference.tokenizer, "CACHE_CHARS", 1_000)
    tok = Tokenizer(shipped_tokenizer.encoder, shipped_tokenizer.merge_ranks)  # a cache of its own
    tok.encode("a" * 1_500)
    assert tok._cache_chars == 1_500
    tok.encode("fn main() {}")
    assert tok._cache_chars < 20 and max(map(len, tok._cache)) < 10


def test_trainer_is_deterministic_and_breaks_ties_by_smallest_pair():
    pieces = Counter({"ab": 3, "cd": 3, "abcd": 1})
    tok = train_bpe(pieces, n_merges=3, special_tokens=(), min_count=1)
    # "ab" and "cd" both occur 4 times; (97, 98) < (99, 100), so "ab" is merge 0.
    assert sorted(tok.merge_ranks, key=tok.merge_ranks.get) == [b"ab", b"cd", b"abcd"]
    assert train_bpe(pieces, n_merges=3, special_tokens=(), min_count=1).merge_ranks == tok.merge_ranks


def test_trainer_counts_match_a_naive_recount(varied):
    """After every merge the incremental pair counts must equal a recount:
    the naive trainer below recounts from scratch and must pick the same merges."""
    pieces = count_pieces([varied[:20_000]])
    fast = train_bpe(pieces, n_merges=60, special_tokens=())
    words = {tuple(bytes([b]) for b in p.encode()): n for p, n in pieces.items()}
    naive = []
    for _ in range(60):
        counts = Counter()
        for w, n in words.items():
            for pair in zip(w, w[1:]):
                counts[pair] += n
        ids = {b: fast.encoder[b] for w in words for b in w}
        best = min(counts, key=lambda p: (-counts[p], ids[p[0]], ids[p[1]]))
        naive.append(best[0] + best[1])
        words = {tuple(merge_bytes(w, best)): n for w, n in words.items()}
    assert sorted(fast.merge_ranks, key=fast.merge_ranks.get) == naive


def merge_bytes(word, pair):
    out, i = [], 0
    while i < len(word):
        if word[i:i + 2] == pair:
            out.append(pair[0] + pair[1])
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out


def test_save_and_load_both_formats(trained, tmp_path, varied):
    trained.save(tmp_path / "hf")
    again = Tokenizer.from_dir(tmp_path / "hf")
    assert again.encoder == trained.encoder and again.special_tokens == trained.special_tokens
    ranks_file = tmp_path / "ranks.tiktoken"
    ranks_file.write_text("".join(f"{base64.b64encode(b).decode()} {i}\n" for b, i in trained.encoder.items()))
    from_tt = Tokenizer.from_tiktoken(ranks_file, special_tokens=trained.special_tokens)
    sample = varied[:50_000]
    assert again.encode(sample) == from_tt.encode(sample) == trained.encode(sample)


def test_hf_files_use_gpt2_conventions(shipped_tokenizer, tmp_path):
    shipped_tokenizer.save(tmp_path)
    vocab = json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8"))
    merges = (tmp_path / "merges.txt").read_text(encoding="utf-8").splitlines()
    assert merges[0].startswith("#version")
    assert vocab["Ġ"] == ord(" ") and vocab[ENDOFTEXT] == 4095 and len(vocab) == 4096
    assert len(merges) - 1 == len(shipped_tokenizer.merge_ranks)


@pytest.mark.parametrize("files, message", [
    ({}, "vocab.json"),
    ({"vocab.json": "{not json", "merges.txt": ""}, "not valid JSON"),
    ({"vocab.json": "{}", "merges.txt": "#version: 0.2\na b c\n"}, "expected two tokens"),
    ({"vocab.json": '{"a": 0, "b": 1}', "merges.txt": "a b\n"}, "not in"),
])
def test_bad_tokenizer_files_name_the_problem(tmp_path, files, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(TokenizerError, match=message):
        Tokenizer.from_dir(tmp_path)
