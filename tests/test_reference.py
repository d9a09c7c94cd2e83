"""The NumPy reference: each equation against a float64 restatement, and the
KV-cache decode path against recomputing the whole prefix."""

import math

import numpy as np
import pytest

from inference.reference import layers
from inference.reference.model import KVCache, forward, forward_last

RNG = np.random.default_rng(0)


def f64(x):
    return np.asarray(x, dtype=np.float64)


def test_layer_norm_is_biased_variance_with_eps_inside_the_root():
    x = RNG.standard_normal((5, 48)).astype(np.float32) * 3 + 1
    g, b = RNG.standard_normal(48).astype(np.float32), RNG.standard_normal(48).astype(np.float32)
    got = layers.layer_norm(x, g, b, eps=1e-5)
    xd = f64(x)
    mu = xd.sum(1, keepdims=True) / 48
    var = ((xd - mu) ** 2).sum(1, keepdims=True) / 48  # biased: divide by n, not n - 1
    want = (xd - mu) / np.sqrt(var + 1e-5) * g + b
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_gelu_is_the_tanh_form():
    x = np.linspace(-6, 6, 1001, dtype=np.float32)
    got = layers.gelu(x)
    want = [0.5 * v * (1 + math.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v**3))) for v in f64(x)]
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    exact = [0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in f64(x)]
    assert np.max(np.abs(f64(got) - exact)) > 1e-4, "tanh form, not the erf form"


def test_softmax_survives_huge_logits_and_masks_minus_infinity():
    x = np.array([[1000.0, 1001.0, -np.inf], [0.0, 0.0, 0.0]], dtype=np.float32)
    got = layers.softmax(x)
    e = math.exp(-1)
    np.testing.assert_allclose(got[0], [e / (1 + e), 1 / (1 + e), 0.0], rtol=1e-6)
    np.testing.assert_allclose(got[1], [1 / 3] * 3, rtol=1e-6)


def test_causal_mask_lets_each_query_see_itself_and_the_past():
    m = layers.causal_mask(2, 4)  # queries at positions 2 and 3
    assert m.tolist() == [[0, 0, 0, -np.inf], [0, 0, 0, 0]]


def test_attention_against_an_explicit_loop():
    T, D = 6, 8
    q, k, v = (RNG.standard_normal((T, D)).astype(np.float32) for _ in range(3))
    got = layers.attention(q, k, v, layers.causal_mask(T, T))
    for i in range(T):
        scores = [f64(q[i]) @ f64(k[j]) / math.sqrt(D) for j in range(i + 1)]
        w = np.exp(np.array(scores) - max(scores))
        want = (w / w.sum()) @ f64(v[: i + 1])
        np.testing.assert_allclose(got[i], want, rtol=1e-5, atol=1e-6)


def test_all_arithmetic_stays_float32(tiny_model):
    logits = tiny_model.forward([1, 2, 3])
    assert logits.dtype == np.float32 and logits.shape == (3, tiny_model.config.vocab_size)


def test_decode_with_kv_cache_equals_recomputing_the_prefix_at_every_position(tiny_model):
    m = tiny_model
    n_ctx = m.config.n_ctx
    ids = RNG.integers(0, m.config.vocab_size, size=n_ctx)
    full = forward(m.params, m.config, ids)  # [n_ctx, V], one pass, no cache reuse
    cache = KVCache(m.config)
    prefill = forward(m.params, m.config, ids[:5], cache)
    np.testing.assert_allclose(prefill, full[:5], rtol=1e-5, atol=1e-5)
    for pos in range(5, n_ctx):
        step = forward_last(m.params, m.config, [ids[pos]], cache)
        np.testing.assert_allclose(step, full[pos], rtol=1e-5, atol=1e-5, err_msg=f"position {pos}")
    assert cache.length == n_ctx


def test_the_context_size_is_enforced(tiny_model):
    m = tiny_model
    cache = KVCache(m.config)
    forward(m.params, m.config, np.zeros(m.config.n_ctx, dtype=np.int64), cache)
    with pytest.raises(ValueError, match="do not fit the context of 64"):
        forward_last(m.params, m.config, [0], cache)
