"""The reference backend: the NumPy model from inference.reference, on the CPU."""

import numpy as np

from ..reference.model import KVCache, forward, forward_last
from ..reference.sampling import sample


class NumpyModel:
    device = "cpu"

    def __init__(self, config, params, tokenizer, name):
        self.config, self.params, self.tokenizer, self.name = config, params, tokenizer, name

    def forward(self, ids) -> np.ndarray:  # [T] -> [T, V] float32 logits
        return forward(self.params, self.config, ids)

    def new_session(self) -> "NumpySession":
        return NumpySession(self)


class NumpySession:
    """One sequence: its KV cache, allocated once, grows with every step."""

    def __init__(self, model: NumpyModel):
        self.model = model
        self.cache = KVCache(model.config)

    def step(self, ids, temperature, top_k, top_p, coin) -> int:
        """Feed the new ids (the prompt, then one token at a time); return the next id."""
        logits = forward_last(self.model.params, self.model.config, ids, self.cache)
        return sample(logits, temperature, top_k, top_p, coin)
