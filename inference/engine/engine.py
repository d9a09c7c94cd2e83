"""The engine: one thread owns the model and loops

    schedule -> one backend step over the batch -> hand each request its token

while the server's threads only submit requests and read their tokens.
"""

import logging
import threading
import time

from ..generation import Settings
from .blocks import BlockManager
from .request import Overloaded, Request, ShuttingDown, StepFailed
from .scheduler import Scheduler

log = logging.getLogger("inference.engine")


class Engine:
    """Continuous batching over a paged KV cache (see docs/tutorials/08-batching.md).

    max_batch:       requests running at once (1: one at a time, as before batching)
    max_waiting:     requests waiting for a place beyond the batch's free ones; past that, submit()
                     is refused (429): at most max_batch + max_waiting requests at once
    kv_blocks:       size of the KV pool, in blocks (default: room for max_batch full contexts)
    block_size:      positions per block
    max_step_tokens: tokens one step may compute: decodes first, then prompt chunks
    """

    def __init__(self, model, max_batch: int = 16, max_waiting: int = 16, kv_blocks: int | None = None,
                 block_size: int = 16, max_step_tokens: int = 64):
        n_ctx = model.config.n_ctx
        if block_size > n_ctx:
            raise ValueError(f"block_size ({block_size}) must be at most the model's context ({n_ctx} positions)")
        blocks_per_context = -(-n_ctx // block_size)
        kv_blocks = kv_blocks or max_batch * blocks_per_context
        if kv_blocks < blocks_per_context:
            raise ValueError(f"a KV cache of {kv_blocks} blocks of {block_size} cannot hold one full context "
                             f"of {n_ctx} positions ({blocks_per_context} blocks)")
        if max_step_tokens < max_batch:
            raise ValueError(f"max_step_tokens ({max_step_tokens}) must be at least max_batch ({max_batch})")
        self.model = model
        self.pool = model.new_kv_pool(kv_blocks, block_size, max_rows=max_step_tokens, max_seqs=max_batch)
        self.blocks = BlockManager(kv_blocks, block_size)
        self.scheduler = Scheduler(self.blocks, max_batch, max_step_tokens, max_waiting)
        self.wakeup = threading.Condition()
        self.stopping = False
        self.steps = 0
        self.on_finish = lambda request, finished_at: None  # e.g. metrics (inference.metrics)
        self.on_step = lambda seconds, sequences: None  # each backend step's time and batch, e.g. metrics
        self.thread = threading.Thread(target=self._loop, name="engine", daemon=True)
        self.thread.start()

    # ------------------------------------------------------- the server's side

    def submit(self, prompt_ids, settings) -> Request:
        request = Request(prompt_ids, settings, self.model.tokenizer, self.model.config.n_ctx)
        with self.wakeup:
            if self.stopping:
                raise ShuttingDown("the server is shutting down")
            s = self.scheduler
            running, waiting = len(s.running), len(s.waiting)
            if running + waiting >= s.max_batch + s.max_waiting:  # one that a free place will take is not refused
                raise Overloaded(f"server is busy: {running} running and {waiting} waiting for a place "
                                 f"(at most {s.max_batch} + {s.max_waiting}); retry shortly")
            s.waiting.append(request)
            self.wakeup.notify()
        return request

    def cancel(self, request: Request) -> None:
        """Its client went away: its place and blocks are freed at the next step."""
        request.cancelled = True

    def idle(self) -> bool:
        with self.wakeup:
            return not self.scheduler.has_work()

    def stats(self) -> dict:
        with self.wakeup:
            return {"running": len(self.scheduler.running), "waiting": len(self.scheduler.waiting),
                    "kv_cache_usage": round(self.blocks.usage(), 4)}

    def totals(self) -> dict:
        """Counts since the engine started, for metrics: requests preempted, and
        positions looked up in the prefix cache on admission and found there."""
        with self.wakeup:
            s = self.scheduler
            return {"preemptions": s.preemptions, "prefix_cache_queries": s.prefix_queries,
                    "prefix_cache_hits": s.prefix_hits}

    def warm_up(self) -> float:
        """Run one short request through every path a request takes (a prompt
        of several tokens, a sampled token, then greedy ones) and return the
        seconds it took. On CUDA that compiles every kernel the engine launches
        (Numba compiles on first call) and records the decode step of one
        sequence as a CUDA graph (its second decode step), so the first request
        does not wait for either, and a GPU that cannot run them fails here,
        before serving: the error is raised."""
        t0 = time.perf_counter()
        n_ctx = self.model.config.n_ctx
        prompt = [0] * max(1, min(8, n_ctx - 2))  # > 4 rows: the kernels' prompt paths, not only decode ones
        for settings in (Settings(max_new_tokens=1, seed=0), Settings(max_new_tokens=3, do_sample=False)):
            for _ in self.submit(prompt, settings).stream():
                pass
        return time.perf_counter() - t0

    def stop(self) -> None:
        """End every request (its reader gets an error) and the loop."""
        with self.wakeup:
            self.stopping = True
            self.wakeup.notify()
        self.thread.join(timeout=10)
        with self.wakeup:
            for request in list(self.scheduler.running) + list(self.scheduler.waiting):
                request.fail(ShuttingDown("the server is shutting down"))
            self.scheduler.running.clear()
            self.scheduler.waiting.clear()

    # ------------------------------------------------------- the engine thread

    def _loop(self) -> None:  # the engine thread's whole life; only that thread may run it (one owner of the model)
        while True:
            with self.wakeup:
                while not self.stopping and not self.scheduler.has_work():
                    self.wakeup.wait()
                if self.stopping:
                    return
                batch = self.scheduler.schedule()
            if not batch:  # only cancelled requests were left
                continue
            try:
                started = time.perf_counter()
                picks = self.model.step_batch(self.pool, [item.chunk for item in batch])
                stepped = time.perf_counter() - started
            except Exception as e:  # the model failed: every request of this step fails, the engine goes on
                log.error("generation failed", exc_info=e)
                with self.wakeup:
                    for item in batch:
                        item.request.fail(StepFailed(f"generation failed: {type(e).__name__}: {e}"))
                        self.scheduler.retire(item.request)
                continue
            with self.wakeup:
                self.steps += 1
                finished = self.scheduler.finish_step(batch, picks)
            self.on_step(stepped, len(batch))
            for request in finished:
                self.on_finish(request, time.perf_counter())


