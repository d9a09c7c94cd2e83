"""The decode loop: limits, eos, stop sequences, UTF-8-safe streaming."""

import numpy as np
import pytest

from inference.generation import PromptTooLong, Settings, StopMatcher, generate, generate_tokens
from inference.reference.model import GPT2Config
from inference.reference.sampling import Pick
from inference.tokenizer import ENDOFTEXT


class ScriptedModel:
    """Returns a fixed sequence of ids, and records what generation fed it."""

    def __init__(self, tokenizer, script, n_ctx=64):
        self.tokenizer, self.script = tokenizer, list(script)
        self.config = GPT2Config(n_layer=1, n_head=1, n_embd=4, n_ctx=n_ctx, vocab_size=tokenizer.vocab_size)
        self.fed = []

    def new_session(self):
        script, fed = iter(self.script), self.fed

        class Session:
            def step(self, ids, sampling):
                fed.append(list(ids))
                return Pick(next(script))
        return Session()


def ids_of(tok, text):
    return tok.encode(text)


def byte_ids(tok, text):
    """One token per UTF-8 byte, so characters are split across tokens."""
    return [tok.encoder[bytes([b])] for b in text.encode("utf-8")]


def run(model, settings, prompt=(1,)):
    tokens = list(generate_tokens(model, list(prompt), settings))
    return "".join(t.text for t in tokens), tokens


def test_length_limit(shipped_tokenizer):
    m = ScriptedModel(shipped_tokenizer, ids_of(shipped_tokenizer, "fn main() { let x = 1; }"))
    text, tokens = run(m, Settings(max_new_tokens=3))
    assert len(tokens) == 3 and tokens[-1].finish_reason == "length"
    assert text == shipped_tokenizer.decode([t.id for t in tokens])


def test_eos_ends_generation_without_its_text(shipped_tokenizer):
    tok = shipped_tokenizer
    eos = tok.special_tokens[ENDOFTEXT]
    m = ScriptedModel(tok, ids_of(tok, "fn a()") + [eos] + ids_of(tok, "never"))
    text, tokens = run(m, Settings(max_new_tokens=50))
    assert text == "fn a()" and tokens[-1].finish_reason == "eos" and tokens[-1].id == eos


def test_empty_prompt_starts_from_endoftext_and_context_limit(shipped_tokenizer):
    tok = shipped_tokenizer
    m = ScriptedModel(tok, ids_of(tok, "x") * 100, n_ctx=8)
    text, tokens = run(m, Settings(max_new_tokens=100), prompt=[])
    assert m.fed[0] == [tok.special_tokens[ENDOFTEXT]]
    assert len(tokens) == 7 and tokens[-1].finish_reason == "length"  # 1 + 7 = n_ctx


def test_a_prompt_that_fills_the_context_is_refused(shipped_tokenizer):
    m = ScriptedModel(shipped_tokenizer, [1], n_ctx=8)
    with pytest.raises(PromptTooLong, match="prompt is 8 tokens; the context holds 8"):
        run(m, Settings(), prompt=[1] * 8)


def test_stop_sequence_spanning_tokens_and_ending_inside_one(shipped_tokenizer):
    tok = shipped_tokenizer
    script = byte_ids(tok, "let a = 1;\n\nlet b = 2;")
    text, tokens = run(ScriptedModel(tok, script), Settings(max_new_tokens=50, stop_sequences=["\n\nl"]))
    assert text == "let a = 1;" and tokens[-1].finish_reason == "stop"
    # "= 2" ends inside the multi-byte token "= 2;" of a normal encoding
    script = ids_of(tok, "let a = 1; let b = 2; let c = 3;")
    text, tokens = run(ScriptedModel(tok, script), Settings(max_new_tokens=50, stop_sequences=["b = 2", "zzz"]))
    assert text == "let a = 1; let " and tokens[-1].finish_reason == "stop"


def test_the_earliest_stop_wins(shipped_tokenizer):
    tok = shipped_tokenizer
    script = ids_of(tok, "abc def ghi")
    text, _ = run(ScriptedModel(tok, script), Settings(max_new_tokens=50, stop_sequences=["ghi", "c d"]))
    assert text == "ab"


def test_streamed_pieces_never_split_a_character(shipped_tokenizer):
    tok = shipped_tokenizer
    script = byte_ids(tok, "é😀日本🦀")
    text, tokens = run(ScriptedModel(tok, script), Settings(max_new_tokens=len(script)))
    assert text == "é😀日本🦀"
    assert all("\ufffd" not in t.text for t in tokens)
    assert sum(1 for t in tokens if t.text) == 5


def test_held_back_text_is_released_when_the_stop_does_not_complete(shipped_tokenizer):
    tok = shipped_tokenizer
    script = byte_ids(tok, "ab\n\ncd\n")
    text, tokens = run(ScriptedModel(tok, script), Settings(max_new_tokens=len(script), stop_sequences=["\n\nx"]))
    assert text == "ab\n\ncd\n" and tokens[-1].finish_reason == "length"
    assert [t.text for t in tokens[:4]] == ["a", "b", "", ""]  # "\n\n" waits: it may start "\n\nx"


def test_stop_matcher_holds_only_possible_starts():
    m = StopMatcher(["END", "xyz"])
    assert m.push("abcE") == ("abc", False)
    assert m.push("N") == ("", False)
    assert m.push("Q") == ("ENQ", False)
    assert m.push("..EN") == ("..", False)
    assert m.push("D!") == ("", True)


def test_streaming_equals_non_streaming_over_many_seeds_and_stops(tiny_model):
    rng = np.random.default_rng(3)
    free = generate(tiny_model, "fn main() {", Settings(max_new_tokens=40, seed=0, temperature=1.0)).text
    assert len(free) > 20
    for seed in range(25):
        start = int(rng.integers(0, len(free) - 4))
        stop = free[start:start + int(rng.integers(1, 5))]
        settings = Settings(max_new_tokens=40, seed=0, temperature=1.0, stop_sequences=[stop, "@@@"])
        result = generate(tiny_model, "fn main() {", settings)
        streamed = list(generate_tokens(tiny_model, tiny_model.tokenizer.encode("fn main() {"), settings))
        assert "".join(t.text for t in streamed) == result.text
        assert result.finish_reason == "stop" and stop not in result.text
        assert free.startswith(result.text) and free[len(result.text):].startswith(stop)
    for seed in range(25):
        s = Settings(max_new_tokens=int(rng.integers(1, 30)), seed=seed, temperature=1.2, top_k=0, top_p=1.0)
        tokens = list(generate_tokens(tiny_model, [5, 6], s))
        eos = tiny_model.tokenizer.special_tokens[ENDOFTEXT]
        ids = [t.id for t in tokens if t.id != eos]
        assert "".join(t.text for t in tokens) == tiny_model.tokenizer.decode(ids)


def test_the_same_seed_gives_the_same_text(tiny_model):
    s = Settings(max_new_tokens=30, temperature=1.0, top_k=0, top_p=1.0)
    a = generate(tiny_model, "let", Settings(**{**s.__dict__, "seed": 11}))
    b = generate(tiny_model, "let", Settings(**{**s.__dict__, "seed": 11}))
    c = generate(tiny_model, "let", Settings(**{**s.__dict__, "seed": 12}))
    assert a == b and a.ids != c.ids


def test_greedy_ignores_the_seed(tiny_model):
    a = generate(tiny_model, "let", Settings(max_new_tokens=20, do_sample=False, seed=1))
    b = generate(tiny_model, "let", Settings(max_new_tokens=20, temperature=0.0, seed=2))
    assert a == b
