"""The reference backend: the NumPy model from inference.reference, on the CPU."""

import numpy as np

from ..reference.model import KVCache, forward, forward_last
from ..reference.paged import KVPool, batch_hidden_states, batch_lm_head, sampled_rows
from ..reference.sampling import Pick, Sampling, choose
from .cores import blas_threads_at_most, cores_allowed
from .memory import refuse_beyond_room


class NumpyModel:
    device = "cpu"

    def __init__(self, config, params, tokenizer, name):
        self.config, self.params, self.tokenizer, self.name = config, params, tokenizer, name
        # NumPy's products (all of them here; cpu-numba's sessions') on no more threads than the CPU quota allows
        self.blas_threads = blas_threads_at_most(cores_allowed())

    def forward(self, ids) -> np.ndarray:  # [T] -> [T, V] float32 logits
        return forward(self.params, self.config, ids)

    def new_session(self) -> "NumpySession":
        return NumpySession(self)

    def new_kv_pool(self, n_blocks: int, block_size: int, max_rows=None, max_seqs=None) -> KVPool:
        # asked first: Linux says yes to any size, and its OOM killer would end the process as the pool is written
        refuse_beyond_room(KVPool.nbytes(self.config, n_blocks, block_size), "a KV cache")
        return KVPool(self.config, n_blocks, block_size)  # a step's arrays are made as it goes

    def step_batch(self, pool: KVPool, chunks) -> list[Pick | None]:
        """One step over many sequences (reference/paged.py): every chunk's new
        tokens in, the next token of each chunk that samples out (None for the others)."""
        hidden = batch_hidden_states(self.params, self.config, pool, chunks)  # [N, C]
        sampled, last_rows = sampled_rows(chunks)
        logits = batch_lm_head(hidden[last_rows], self.params["wte"])  # [n, V]
        picks = [None] * len(chunks)
        for i, row in zip(sampled, logits):
            picks[i] = choose(row, chunks[i].sampling)
        return picks


class NumpySession:
    """One sequence: its KV cache, allocated once, grows with every step."""

    def __init__(self, model: NumpyModel):
        self.model = model
        self.cache = KVCache(model.config)

    def step(self, ids, sampling: Sampling) -> Pick:
        """Feed the new ids (the prompt, then one token at a time); pick the next token."""
        logits = forward_last(self.model.params, self.model.config, ids, self.cache)
        return choose(logits, sampling)
