"""layer_norm, gelu, softmax and embedding kernels against the reference."""

import numpy as np
import pytest

from inference.kernels import embedding as embedding_k
from inference.kernels import gelu as gelu_k
from inference.kernels import layernorm as layernorm_k
from inference.kernels import softmax as softmax_k
from inference.reference import layers
from parity import assert_close, device, poisoned, sizes

RNG = np.random.default_rng(2024)

ROWS = sizes([(1, 7), (5, 40), (3, 33)], [(1, 768), (7, 33), (64, 768), (1024, 768), (4096, 1600), (333, 1023)])


@pytest.mark.parametrize("version", layernorm_k.VERSIONS)
@pytest.mark.parametrize("shape", ROWS, ids=str)
def test_layer_norm(version, shape):
    N, C = shape
    x = (RNG.standard_normal(shape) * 2 + 0.5).astype(np.float32)  # non-zero mean: the centering matters
    g = (1 + 0.2 * RNG.standard_normal(C)).astype(np.float32)
    b = (0.1 * RNG.standard_normal(C)).astype(np.float32)
    out = poisoned(shape)
    layernorm_k.layer_norm(device(x), device(g), device(b), 1e-5, out=out, version=version)
    assert_close(out.copy_to_host(), layers.layer_norm(x, g, b, 1e-5), "layer_norm")


@pytest.mark.parametrize("block_size", sizes([32, 64], [32, 128, 256, 1024]))
def test_layer_norm_block_sizes(block_size):
    x = RNG.standard_normal((9, 50)).astype(np.float32)
    g, b = np.ones(50, np.float32), np.zeros(50, np.float32)
    for version in layernorm_k.VERSIONS:
        out = poisoned(x.shape)
        layernorm_k.layer_norm(device(x), device(g), device(b), 1e-5, out=out, version=version, block_size=block_size)
        assert_close(out.copy_to_host(), layers.layer_norm(x, g, b, 1e-5), "layer_norm")


@pytest.mark.parametrize("version", gelu_k.VERSIONS)
@pytest.mark.parametrize("shape", sizes([(1,), (3, 37), (70,)], [(1,), (1, 3072), (1000, 3072), (4097, 3073)]), ids=str)
def test_gelu(version, shape):
    x = (RNG.standard_normal(shape) * 3).astype(np.float32)  # spans the curved part and both tails
    out = poisoned(shape)
    gelu_k.gelu(device(x), out=out, version=version)
    assert_close(out.copy_to_host(), layers.gelu(x), "gelu")


def test_gelu_in_place():
    x = np.linspace(-8, 8, 45, dtype=np.float32).reshape(5, 9)
    d = device(x)
    gelu_k.gelu(d, out=d)
    assert_close(d.copy_to_host(), layers.gelu(x), "gelu")


@pytest.mark.parametrize("version", softmax_k.VERSIONS)
@pytest.mark.parametrize("shape", sizes([(1, 1), (4, 33), (2, 70)], [(1, 1), (12, 1024), (1024, 1024), (64, 50257)]),
                         ids=str)
def test_softmax(version, shape):
    x = (RNG.standard_normal(shape) * 4).astype(np.float32)
    if shape[1] > 3:
        x[:, shape[1] // 2:] = -np.inf  # a masked tail, as causal attention makes
        x[0, 0] = 80.0  # large enough that exp() without the max shift would overflow
    out = poisoned(shape)
    softmax_k.softmax(device(x), out=out, version=version)
    assert_close(out.copy_to_host(), layers.softmax(x), "softmax, one thread per row" if version == 1 else "softmax")


@pytest.mark.parametrize("T, start", sizes([(1, 0), (5, 3)], [(1, 0), (1, 1023), (300, 17)]))
def test_embedding(T, start):
    V, n_ctx, C = sizes((50, 16, 12), (50257, 1024, 768))
    wte = RNG.standard_normal((V, C)).astype(np.float32)
    wpe = RNG.standard_normal((n_ctx, C)).astype(np.float32)
    ids = RNG.integers(0, V, size=T)
    out = poisoned((T, C))
    embedding_k.embedding(device(wte), device(wpe), device(ids, np.int32), start, out=out)
    assert_close(out.copy_to_host(), layers.embedding(wte, wpe, ids, np.arange(start, start + T)), "embedding")
