"""The decode loop, the same for every backend.

    for token in generate_tokens(model, prompt_ids, Settings(max_new_tokens=64)):
        print(token.id, repr(token.text), token.finish_reason)

One model step per token: the first step feeds the whole prompt (prefill),
each later one the token just chosen (decode). A step returns the next id;
the backend samples it with the coin this loop draws from the request's
seeded generator, so the same seed gives the same text on every backend.

Text is released carefully: never half a UTF-8 character (the stream
decoder holds those bytes), and never text that might still turn out to be
the start of a stop sequence (the StopMatcher holds it). So the streamed
pieces, joined, are exactly the text a non-streaming call returns.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .reference.sampling import Penalties, Pick, Sampling
from .tokenizer import ENDOFTEXT


@dataclass(frozen=True)
class Settings:
    """A request's generation parameters, with the API's defaults (docs/api.md)."""
    max_new_tokens: int = 128
    temperature: float = 0.7
    top_k: int = 40
    top_p: float = 0.9
    stop_sequences: Sequence[str] = ()
    do_sample: bool = True
    seed: int | None = None
    min_p: float = 0.0
    repetition_penalty: float = 1.0  # 1: off
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    logprobs: int | None = None  # report each token's log-probability and this many alternatives

    def sampling(self, coin: float, tokens: Sequence[int], prompt_length: int) -> Sampling:
        """How the next token is picked, given the sequence so far (prompt, then output)."""
        temperature = self.temperature if self.do_sample else 0.0  # greedy is temperature 0
        penalties = None
        if (self.repetition_penalty, self.frequency_penalty, self.presence_penalty) != (1.0, 0.0, 0.0):
            penalties = Penalties.of(tokens, prompt_length, self.repetition_penalty, self.frequency_penalty,
                                     self.presence_penalty)
        return Sampling(float(temperature), int(self.top_k), float(self.top_p), float(coin), float(self.min_p),
                        penalties, self.logprobs)


class Token(NamedTuple):  # made for every token of every request: a NamedTuple costs a third of a dataclass
    id: int
    text: str  # the text this token releases (may be "" while text is held back)
    finish_reason: str | None = None  # set on the last token: "length", "stop" or "eos"
    logprob: float | None = None  # with logprobs asked for: its log-probability
    top: tuple = ()  # and the likeliest alternatives, (id, logprob) pairs


class StopMatcher:
    """Finds stop sequences in text that arrives piece by piece.

    push() returns the text that is safe to release: everything before the
    earliest stop sequence (then it reports the stop), or else everything but
    the longest tail that is the start of some stop sequence.
    """

    def __init__(self, stops: Sequence[str]):
        self.stops = [s for s in stops if s]
        self.longest = max(map(len, self.stops), default=0)
        self.pending = ""

    def push(self, text: str) -> tuple[str, bool]:
        if not self.stops:  # nothing to hold back
            return text, False
        self.pending += text
        hits = [i for i in (self.pending.find(s) for s in self.stops) if i >= 0]
        if hits:
            released, self.pending = self.pending[:min(hits)], ""
            return released, True
        hold = self.longest_stop_prefix_tail()
        cut = len(self.pending) - hold
        released, self.pending = self.pending[:cut], self.pending[cut:]
        return released, False

    def longest_stop_prefix_tail(self) -> int:
        """Length of the longest tail of `pending` that begins some stop string."""
        for n in range(min(len(self.pending), self.longest), 0, -1):
            tail = self.pending[-n:]
            if any(s.startswith(tail) for s in self.stops):
                return n
        return 0

    def flush(self) -> str:
        released, self.pending = self.pending, ""
        return released


class PromptTooLong(ValueError):
    pass


def prompt_feed(prompt_ids: Sequence[int], tokenizer, n_ctx: int) -> list[int]:
    """The ids the first step feeds: the prompt, or <|endoftext|> for an
    empty one (as GPT-2 starts), checked to leave room for one new token."""
    eos = tokenizer.special_tokens.get(ENDOFTEXT)
    if not prompt_ids and eos is None:
        raise ValueError(f"an empty prompt starts from {ENDOFTEXT}, which this tokenizer does not have")
    feed = list(prompt_ids) or [eos]
    if len(feed) >= n_ctx:
        raise PromptTooLong(f"prompt is {len(feed)} tokens; the context holds {n_ctx}, "
                            f"so a prompt may have at most {n_ctx - 1}")
    return feed


class Finisher:
    """The finish rules, written once: each new id in, the Token it releases
    out, with a finish_reason on the last one. Used by generate_tokens here
    and by the batching engine (inference.engine) alike.

    A request ends on <|endoftext|> ("eos"), on a stop sequence ("stop"),
    after max_new_tokens or when the context is full ("length")."""

    def __init__(self, tokenizer, settings: "Settings", prompt_length: int, n_ctx: int):
        if settings.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {settings.max_new_tokens}")
        self.eos = tokenizer.special_tokens.get(ENDOFTEXT)
        self.decoder, self.stops = tokenizer.stream_decoder(), StopMatcher(settings.stop_sequences)
        self.max_new_tokens, self.n_ctx = settings.max_new_tokens, n_ctx
        self.prompt_length, self.length, self.generated = prompt_length, prompt_length, 0

    def accept(self, pick: Pick) -> Token:
        self.length, self.generated = self.length + 1, self.generated + 1
        if pick.id == self.eos:
            return self.finish(pick, "", "eos")
        released, stopped = self.stops.push(self.decoder.feed(pick.id))
        if stopped:
            return Token(pick.id, released, "stop", pick.logprob, pick.top)
        if self.generated == self.max_new_tokens or self.length == self.n_ctx:
            return self.finish(pick, released, "length")
        return Token(pick.id, released, None, pick.logprob, pick.top)

    def finish(self, pick: Pick, released: str, reason: str) -> Token:
        """The last token: release what was held back (unless it completes a stop)."""
        tail, stopped = self.stops.push(self.decoder.flush())
        if stopped:
            return Token(pick.id, released + tail, "stop", pick.logprob, pick.top)
        return Token(pick.id, released + tail + self.stops.flush(), reason, pick.logprob, pick.top)


def generate_tokens(model, prompt_ids: Sequence[int], settings: Settings) -> Iterator[Token]:
    """Yield the generated tokens; the last one carries the finish reason."""
    feed = prompt_feed(prompt_ids, model.tokenizer, model.config.n_ctx)
    finisher = Finisher(model.tokenizer, settings, len(feed), model.config.n_ctx)
    coins = np.random.default_rng(settings.seed)
    session, tokens = model.new_session(), list(feed)  # tokens: the prompt, then the output
    while True:
        sampling = settings.sampling(coins.random(dtype=np.float32), tokens, finisher.prompt_length)
        token = finisher.accept(session.step(feed, sampling))
        yield token
        if token.finish_reason:
            return
        feed = [token.id]
        tokens.append(token.id)


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str
    ids: list[int]


def generate(model, prompt: str, settings: Settings = Settings()) -> Completion:
    """Text in, text out: the non-streaming form of generate_tokens."""
    tokens = list(generate_tokens(model, model.tokenizer.encode(prompt), settings))
    return Completion("".join(t.text for t in tokens), tokens[-1].finish_reason, [t.id for t in tokens])
