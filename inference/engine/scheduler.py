"""Which requests run in the next step, and how many of their tokens.

First come, first served. Each step:

1. Every running request that is decoding gets its one new token. If its
   next position needs a block and none is free, the newest running request
   is preempted: its blocks are freed and it goes back to the front of the
   waiting line, to be recomputed later (its tokens so far are kept, so it
   continues where it was; its text is not sent twice).
2. What is left of the step's token budget goes to prompts, oldest first: a
   running request still prefilling, then waiting ones, while the batch has
   room. A long prompt is cut into chunks, so the running streams never wait
   for more than one chunk's worth of prefill.

A waiting request whose prompt starts with blocks in the prefix cache takes
them and skips that part of its prefill.
"""

from collections import deque
from dataclasses import dataclass

from ..reference.paged import Chunk
from ..reference.sampling import Pick
from .blocks import BlockManager
from .request import Request


@dataclass
class Scheduled:
    request: Request
    chunk: Chunk


class Scheduler:
    def __init__(self, blocks: BlockManager, max_batch: int, max_step_tokens: int, max_waiting: int):
        self.blocks, self.max_batch, self.max_step_tokens = blocks, max_batch, max_step_tokens
        self.max_waiting = max_waiting
        self.waiting: deque[Request] = deque()
        self.running: list[Request] = []  # in arrival order
        self.preemptions = 0
        self.prefix_queries = self.prefix_hits = 0  # positions looked up in the prefix cache, and found

    def has_work(self) -> bool:
        return bool(self.waiting or self.running)

    def schedule(self) -> list[Scheduled]:
        self.drop_cancelled()
        batch = self.decodes()
        budget = self.max_step_tokens - len(batch)
        for request in [r for r in self.running if r.pending > 1]:  # prefills already under way
            if budget > 0 and request in self.running and (item := self.running_prefill(request, budget, batch)):
                batch.append(item)
                budget -= len(item.chunk.ids)
        while self.waiting and budget > 0 and len(self.running) < self.max_batch:
            item = self.admit(self.waiting[0], budget)
            if item is None:  # no room in the pool yet: it stays first in line
                break
            self.running.append(self.waiting.popleft())
            batch.append(item)
            budget -= len(item.chunk.ids)
        return batch

    def decodes(self) -> list[Scheduled]:
        batch = []
        for request in list(self.running):
            if request.pending != 1 or request not in self.running:  # prefilling, or preempted just now
                continue
            if self.make_room(request, request.computed + 1, batch):
                batch.append(Scheduled(request, self.chunk(request, 1, request.next_sampling())))
        return batch

    def running_prefill(self, request: Request, budget: int, batch: list[Scheduled]) -> Scheduled | None:
        """The next chunk of a prompt that is being prefilled: as much as the
        budget and the free blocks allow, and at least one token (preempting
        newer requests for it), so that two half-prefilled prompts can never
        wait for each other's blocks."""
        n = min(request.pending, budget, max(self.fits(request), 1))
        if not self.make_room(request, request.computed + n, batch):
            return None
        return self.prefill(request, n)

    def admit(self, request: Request, budget: int) -> Scheduled | None:
        """The first chunk of a waiting request, after the blocks of its prompt
        that are in the prefix cache. It preempts nobody: if nothing fits, it
        gives the cached blocks back and waits (a waiting request holds no
        blocks, or the pool could fill with requests that cannot run)."""
        self.use_cached_prefix(request)
        n = min(request.pending, budget, self.fits(request))
        if n <= 0:
            self.blocks.release(request.block_table)
            request.block_table, request.computed, request.sealed = [], 0, 0
            return None
        self.count_prefix_hits(request)
        self.grow(request, request.computed + n)
        return self.prefill(request, n)

    def prefill(self, request: Request, n: int) -> Scheduled:
        sampling = request.next_sampling() if n == request.pending else None  # the prompt's end: choose a token
        return Scheduled(request, self.chunk(request, n, sampling))

    def chunk(self, request: Request, n: int, sampling) -> Chunk:
        start = request.computed
        return Chunk(request.tokens[start:start + n], start, list(request.block_table), sampling)

    # ------------------------------------------------------------------ blocks

    def fits(self, request: Request) -> int:
        """How many more positions the request's blocks and the free ones hold."""
        room_in_last_block = len(request.block_table) * self.blocks.block_size - request.computed
        return room_in_last_block + self.blocks.available() * self.blocks.block_size

    def blocks_needed(self, request: Request, positions: int) -> int:
        return -(-positions // self.blocks.block_size) - len(request.block_table)

    def grow(self, request: Request, positions: int) -> None:
        for _ in range(self.blocks_needed(request, positions)):
            request.block_table.append(self.blocks.allocate())

    def make_room(self, request: Request, positions: int, batch: list[Scheduled]) -> bool:
        """Blocks for `positions`, preempting the newest running requests that
        are not already in this step's batch if the pool is full. False if none
        could be found, or if `request` itself was the newest and was preempted."""
        while self.blocks.available() < self.blocks_needed(request, positions):
            scheduled = {id(item.request) for item in batch}
            victims = [r for r in self.running if id(r) not in scheduled]
            if not victims:
                return False
            self.preempt(victims[-1])
            if victims[-1] is request:
                return False
        self.grow(request, positions)
        return True

    def preempt(self, request: Request) -> None:
        self.running.remove(request)
        self.blocks.release(request.block_table)
        request.block_table, request.computed, request.sealed = [], 0, 0
        self.preemptions += 1
        self.waiting.appendleft(request)

    def count_prefix_hits(self, request: Request) -> None:
        """On admission: positions looked up and found, for the engine's totals,
        and the request's own at its first (OpenAI's usage reports them)."""
        self.prefix_queries += len(request.tokens)
        self.prefix_hits += request.computed
        if request.cached_tokens is None:
            request.cached_tokens = request.computed

    def use_cached_prefix(self, request: Request) -> None:
        assert not request.block_table, "a waiting request holds no blocks"
        for block in self.blocks.cached_prefix(request.tokens):
            self.blocks.take(block)
            request.block_table.append(block)
        request.sealed = len(request.block_table)  # cached blocks are full, and already known to the cache
        request.computed = request.sealed * self.blocks.block_size

    # ------------------------------------------------------------ after a step

    def finish_step(self, batch: list[Scheduled], picks: list[Pick | None]) -> list[Request]:
        """Record what the step computed and chose; retire finished requests
        and return them."""
        finished = []
        for item, pick in zip(batch, picks):
            request = item.request
            request.computed = item.chunk.end
            self.seal_full_blocks(request)
            if pick is not None and not request.cancelled:
                request.accept(pick)
                if request.finished:
                    finished.append(request)
            if request.finished or request.cancelled:
                self.retire(request)
        return finished

    def seal_full_blocks(self, request: Request) -> None:
        size = self.blocks.block_size
        while (request.sealed + 1) * size <= request.computed:
            i = request.sealed
            self.blocks.seal(request.block_table, i, request.tokens[i * size:(i + 1) * size])
            request.sealed += 1

    def retire(self, request: Request) -> None:
        if request in self.running:
            self.running.remove(request)
        self.blocks.release(request.block_table)
        request.block_table = []

    def drop_cancelled(self) -> None:
        for request in [r for r in self.running if r.cancelled]:
            self.retire(request)
        for request in [r for r in self.waiting if r.cancelled]:  # a waiting request holds no blocks
            self.waiting.remove(request)
