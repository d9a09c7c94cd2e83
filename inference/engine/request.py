"""One request's whole state, from submission to its last token."""

import itertools
import queue
import threading
import time

import numpy as np

from ..generation import Finisher, Settings, Token, prompt_feed
from ..reference.sampling import Pick, Sampling


class EngineError(Exception):
    """Why the engine could not take or finish a request; the server turns each
    kind into an HTTP status (server.py, `api_error`)."""


class Cancelled(EngineError):
    """The request's reader gave up on it (its client went away)."""


class Overloaded(EngineError):
    """Too many requests are waiting for a place already."""


class ShuttingDown(EngineError):
    """The engine is stopping: it takes no request, and ends those it has."""


class StepFailed(EngineError):
    """The model failed during a step this request was part of."""


class Request:
    """What the engine knows of one request, and what its reader receives.

    tokens:      the prompt, then every generated id (the KV cache covers a prefix of it)
    computed:    positions whose keys and values are in the pool
    block_table: the pool blocks holding them (inference.engine.blocks)
    finisher:    the finish rules and the text released so far (inference.generation)
    coins:       the seeded generator: one coin per generated token, so a seed
                 gives the same text alone, batched, or after a preemption
    outbox:      Tokens for the reader; the last one has a finish_reason (or it is an exception)
    ended:       set with the last item put in the outbox, so that a reader pausing between
                 bursts takes it at once
    """

    _numbers = itertools.count()

    def __init__(self, prompt_ids, settings: Settings, tokenizer, n_ctx: int):
        self.number = next(Request._numbers)  # arrival order: first come, first served
        self.tokens = prompt_feed(prompt_ids, tokenizer, n_ctx)
        self.prompt_length = len(self.tokens)
        self.settings = settings
        self.finisher = Finisher(tokenizer, settings, self.prompt_length, n_ctx)
        self.coins = np.random.default_rng(settings.seed)
        self.block_table: list[int] = []
        self.computed = 0
        self.sealed = 0  # full blocks already given their prefix key
        self.cached_tokens: int | None = None  # prompt positions found in the prefix cache when first admitted
        self.cancelled = False
        self.finished = False
        self.outbox: queue.SimpleQueue = queue.SimpleQueue()
        self.ended = threading.Event()
        self.submitted, self.first_token_at = time.perf_counter(), None

    @property
    def pending(self) -> int:
        """Tokens whose keys and values are not computed yet: the rest of the
        prompt while prefilling, then the one token generated last."""
        return len(self.tokens) - self.computed

    def next_sampling(self) -> Sampling:
        return self.settings.sampling(self.coins.random(dtype=np.float32), self.tokens, self.prompt_length)

    def accept(self, pick: Pick) -> Token:
        """The engine chose this request's next token: record it, hand it to the reader."""
        self.tokens.append(pick.id)
        token = self.finisher.accept(pick)
        self.first_token_at = self.first_token_at or time.perf_counter()
        self.finished = token.finish_reason is not None
        self.outbox.put(token)
        if self.finished:
            self.ended.set()
        return token

    def fail(self, error: Exception) -> None:
        self.finished = True
        self.outbox.put(error)
        self.ended.set()

    def stream(self, poll_s: float | None = None, client_gone=None):
        """The reader's side, one Token at a time until the last (bursts without pause)."""
        for burst in self.bursts(0.0, poll_s, client_gone):
            yield from burst

    def bursts(self, interval: float = 0.0, poll_s: float | None = None, client_gone=None):
        """The reader's side: lists of Tokens until the last one, each list all
        that came since the one before. Raises what the engine failed it with.

        After each list but the last the reader pauses `interval` seconds, so
        a fast stream is written to its socket a few tokens at a time: every
        token on its own cost a write, a wake-up of the reader and one of the
        client, taken from the cores the engine's step runs on. A token that
        comes while the reader waits (the first one, and any slower than
        `interval`) is handed over at once, and so is the last one (or an
        error), which ends the pause: the end of a stream is not held back.

        `client_gone()`, asked every `poll_s` seconds whether tokens come or
        not, lets a reader that never writes notice its client left (asked
        only when none came, a disconnect went unnoticed as long as the
        tokens came faster than poll_s)."""
        asks = client_gone is not None and poll_s is not None
        ask_at = time.monotonic() + (poll_s or 0)
        while True:
            items = self.waiting_items(poll_s)
            if asks and (not items or time.monotonic() >= ask_at):
                if client_gone():
                    raise Cancelled("the client went away")
                ask_at = time.monotonic() + poll_s
            tokens = [item for item in items if not isinstance(item, Exception)]
            if tokens:
                yield tokens
            if items and isinstance(items[-1], Exception):
                raise items[-1]
            if tokens and tokens[-1].finish_reason is not None:
                return
            if tokens and interval:
                self.ended.wait(interval)

    def waiting_items(self, timeout: float | None) -> list:
        """Everything in the outbox, waiting up to `timeout` for the first item
        (none: as long as it takes); [] if none came. An exception or a
        finished Token is the last item there is."""
        try:
            items = [self.outbox.get(timeout=timeout)]
        except queue.Empty:
            return []
        while not self.outbox.empty() and not isinstance(items[-1], Exception) and items[-1].finish_reason is None:
            items.append(self.outbox.get())
        return items
