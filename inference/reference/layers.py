"""GPT-2, one equation per function, in NumPy.

Every array is float32. Shapes: T tokens in this call, S = positions the
attention can see (cache + new), C = n_embd, H = n_head, D = C // H head size,
V = vocab size. Parameter names mirror the checkpoint tree, so
`linear(x, **c_fc)` reads like the model file.

Constants are Python floats on purpose: NumPy keeps float32 arrays float32
when multiplied by a Python float, but a NumPy float64 scalar would quietly
promote the whole array to float64.
"""

import math

import numpy as np

GELU_SCALE = math.sqrt(2.0 / math.pi)


def embedding(wte, wpe, ids, positions):  # [V, C], [n_ctx, C], [T], [T] -> [T, C]
    """A token's vector is its word embedding plus its position's embedding."""
    return wte[ids] + wpe[positions]


def layer_norm(x, g, b, eps):  # [T, C], [C], [C] -> [T, C]
    """Normalize each row to mean 0, variance 1 (biased variance, eps inside
    the square root), then scale by g and shift by b. A mean is a sum divided
    by the count, which is what x.mean() computes too, without the layers of
    Python x.mean() goes through first (they cost more than the sum on a
    decode step's one row)."""
    n = x.shape[-1]
    centered = x - np.add.reduce(x, axis=-1, keepdims=True) / n
    variance = np.add.reduce(centered * centered, axis=-1, keepdims=True) / n
    return g * centered / np.sqrt(variance + eps) + b


def linear(x, w, b):  # [T, n_in], [n_in, n_out], [n_out] -> [T, n_out]
    """HF GPT-2 stores Conv1D weights as [in, out], so this is x @ w."""
    return x @ w + b


def gelu(x):  # [...] -> [...]
    """GELU, tanh approximation (GPT-2's choice). x * x * x, not x**3: NumPy
    computes a float power with the general pow(), many times slower."""
    return 0.5 * x * (1.0 + np.tanh(GELU_SCALE * (x + 0.044715 * (x * x * x))))


def softmax(x):  # [..., N] -> [..., N]
    """Subtracting the row max changes nothing mathematically (it cancels in
    the ratio) but keeps exp() from overflowing; exp(-inf) = 0 masks."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def causal_mask(n_q, n_k):  # -> [n_q, n_k]
    """The last n_q of n_k positions are queries; query i (at position
    n_k - n_q + i) may see keys 0..n_k - n_q + i; later keys get -inf."""
    offset = n_k - n_q
    future = np.arange(n_k)[None, :] > (offset + np.arange(n_q))[:, None]
    return np.where(future, -np.inf, 0.0).astype(np.float32)


def attention(q, k, v, mask):  # [..., T, D], [..., S, D], [..., S, D], [T, S] -> [..., T, D]
    """Scaled dot-product attention: each query takes a weighted mean of the
    values, weighted by softmax(q . k / sqrt(D)). Leading axes (heads) are
    independent: NumPy's matmul runs them all in one call."""
    scores = q @ k.swapaxes(-1, -2) / math.sqrt(q.shape[-1]) + mask
    return softmax(scores) @ v


def split_heads(x, n_head):  # [T, C] -> [H, T, D]
    return x.reshape(x.shape[0], n_head, -1).transpose(1, 0, 2)


def merge_heads(x):  # [H, T, D] -> [T, C]
    return x.transpose(1, 0, 2).reshape(x.shape[1], -1)


def self_attention(x, c_attn, c_proj, n_head, cache_k, cache_v, start):
    # x [T, C]; cache_k, cache_v [n_ctx, C] for this layer -> [T, C]
    """Causal multi-head self-attention that appends its keys and values to
    the layer's KV cache at positions start..start+T-1 and attends over
    positions 0..start+T-1. A whole prompt is start=0; a decode step is T=1."""
    T, C = x.shape
    qkv = linear(x, **c_attn)  # [T, 3C]: queries, keys, values side by side
    q, k, v = qkv[:, :C], qkv[:, C:2 * C], qkv[:, 2 * C:]
    cache_k[start:start + T] = k
    cache_v[start:start + T] = v
    S = start + T
    qh = split_heads(q, n_head)  # [H, T, D]
    kh = split_heads(cache_k[:S], n_head)  # [H, S, D]
    vh = split_heads(cache_v[:S], n_head)
    heads = attention(qh, kh, vh, causal_mask(T, S))  # [H, T, D], every head at once
    return linear(merge_heads(heads), **c_proj)


def mlp(x, c_fc, c_proj):  # [T, C] -> [T, C]
    """Widen to 4C, GELU, project back."""
    return linear(gelu(linear(x, **c_fc)), **c_proj)


def block(x, ln_1, attn, ln_2, mlp_params, n_head, eps, cache_k, cache_v, start):  # [T, C] -> [T, C]
    """Pre-norm residual block: x + attn(ln(x)), then x + mlp(ln(x))."""
    x = x + self_attention(layer_norm(x, **ln_1, eps=eps), **attn, n_head=n_head,
                           cache_k=cache_k, cache_v=cache_v, start=start)
    return x + mlp(layer_norm(x, **ln_2, eps=eps), **mlp_params)


def lm_head(x, wte):  # [T, C], [V, C] -> [T, V]
    """The output projection is the token embedding, transposed (tied)."""
    return x @ wte.T
