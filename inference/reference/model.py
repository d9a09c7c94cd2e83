"""The GPT-2 forward pass, over a prompt or one decode step, in NumPy.

    logits = forward(params, config, ids)              # whole prompt, fresh cache
    cache = KVCache(config)
    logits = forward(params, config, prompt, cache)    # prefill: fills positions 0..T-1
    logits = forward(params, config, [token], cache)   # decode: one more position

`params` is the nested dict `inference.checkpoint` builds, mirroring the
Hugging Face names: params["blocks"][i]["attn"]["c_attn"]["w"], ...
"""

from dataclasses import dataclass

import numpy as np

from .layers import block, embedding, layer_norm, lm_head


@dataclass(frozen=True)
class GPT2Config:
    n_layer: int
    n_head: int
    n_embd: int
    n_ctx: int
    vocab_size: int
    eps: float = 1e-5


class KVCache:
    """Keys and values of every layer for one sequence, allocated once:
    k, v [n_layer, n_ctx, C]; positions 0..length-1 are filled."""

    def __init__(self, config: GPT2Config):
        shape = (config.n_layer, config.n_ctx, config.n_embd)
        self.k = np.zeros(shape, dtype=np.float32)
        self.v = np.zeros(shape, dtype=np.float32)
        self.length = 0


def hidden_states(params, config, ids, cache):  # [T] -> [T, C], after the final layer norm
    """Run T new tokens through every block at positions cache.length.. ."""
    ids = np.asarray(ids, dtype=np.int64)
    start, T = cache.length, len(ids)
    if T == 0 or start + T > config.n_ctx:
        raise ValueError(f"positions {start}..{start + T - 1} do not fit the context of {config.n_ctx}")
    x = embedding(params["wte"], params["wpe"], ids, np.arange(start, start + T))
    for layer, p in enumerate(params["blocks"]):
        x = block(x, p["ln_1"], p["attn"], p["ln_2"], p["mlp"], config.n_head, config.eps,
                  cache.k[layer], cache.v[layer], start)
    cache.length = start + T
    return layer_norm(x, **params["ln_f"], eps=config.eps)


def forward(params, config, ids, cache=None):  # [T] -> [T, V] float32 logits
    cache = KVCache(config) if cache is None else cache
    return lm_head(hidden_states(params, config, ids, cache), params["wte"])


def forward_last(params, config, ids, cache):  # [T] -> [V]: logits of the last position only
    """What generation needs: prefill and decode only sample after the last token."""
    return lm_head(hidden_states(params, config, ids, cache)[-1:], params["wte"])[0]
