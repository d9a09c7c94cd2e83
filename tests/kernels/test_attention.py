"""Causal attention kernels (prompt and decode) against the reference's
per-head attention with its -inf mask."""

import numpy as np
import pytest

from inference.kernels import attention as attention_k
from inference.reference import layers
from parity import assert_close, device, poisoned, sizes

RNG = np.random.default_rng(5)
# (T new queries, S keys in all, C, heads): T = S is a prompt, T = 1 a decode step.
CASES = sizes([(1, 1, 8, 2), (1, 9, 16, 2), (3, 7, 16, 2), (5, 5, 12, 3)],
              [(1, 1, 768, 12), (1, 1024, 768, 12), (1, 77, 1600, 25), (128, 128, 768, 12),
               (1024, 1024, 768, 12), (33, 100, 64, 1)])


def reference(q, k, v, n_head):
    T, S, D = q.shape[0], k.shape[0], k.shape[1] // n_head
    heads = [layers.attention(q[:, h * D:(h + 1) * D], k[:, h * D:(h + 1) * D], v[:, h * D:(h + 1) * D],
                              layers.causal_mask(T, S)) for h in range(n_head)]
    return np.concatenate(heads, axis=1)


@pytest.mark.parametrize("version", attention_k.VERSIONS)
@pytest.mark.parametrize("T, S, C, H", CASES, ids=str)
def test_attention(version, T, S, C, H):
    qkv = RNG.standard_normal((T, 3 * C)).astype(np.float32)  # q is read from the packed qkv, as in the model
    k, v = (RNG.standard_normal((S, C)).astype(np.float32) for _ in range(2))
    out = poisoned((T, C))
    attention_k.attention(device(qkv)[:, :C], device(k), device(v), H, out=out, version=version)
    assert_close(out.copy_to_host(), reference(qkv[:, :C], k, v, H), "attention")


def test_store_kv_appends_at_start():
    T, C, n_ctx, start = 3, 8, 10, 4
    qkv = RNG.standard_normal((T, 3 * C)).astype(np.float32)
    ck, cv = poisoned((n_ctx, C)), poisoned((n_ctx, C))
    attention_k.store_kv(device(qkv), ck, cv, start)
    k, v = ck.copy_to_host(), cv.copy_to_host()
    np.testing.assert_array_equal(k[start:start + T], qkv[:, C:2 * C])
    np.testing.assert_array_equal(v[start:start + T], qkv[:, 2 * C:])
    assert np.isnan(k[:start]).all() and np.isnan(k[start + T:]).all()
