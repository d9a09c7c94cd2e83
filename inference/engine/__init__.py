"""Continuous batching: requests join and leave a running batch at every step,
their keys and values in a paged KV cache.

    engine = Engine(model, max_batch=8)
    request = engine.submit(prompt_ids, Settings(max_new_tokens=64))
    for token in request.stream():
        print(token.text, end="")

blocks.py     the KV pool's books: free blocks, reference counts, prefix cache
request.py    one request's state: tokens, finish rules, coins, blocks, outbox
scheduler.py  who runs in the next step: decodes, then prompt chunks; preemption
engine.py     the thread that owns the model: schedule, step, hand out tokens
"""

from .engine import Engine
from .request import Cancelled, EngineError, Overloaded, Request, ShuttingDown, StepFailed

__all__ = ["Engine", "Request", "EngineError", "Cancelled", "Overloaded", "ShuttingDown", "StepFailed"]
