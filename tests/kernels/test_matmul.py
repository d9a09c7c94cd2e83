"""linear (matmul + bias, optionally + residual) kernels against the reference."""

import numpy as np
import pytest

from inference.kernels import matmul
from inference.reference import layers
from parity import assert_close, device, poisoned, sizes

RNG = np.random.default_rng(99)
SHAPES = sizes([(1, 7, 5), (5, 40, 37), (17, 20, 70)],
               [(1, 768, 2304), (1, 3072, 768), (7, 33, 65), (128, 768, 3072), (1024, 768, 768),
                (1024, 3072, 768), (1, 768, 50257), (333, 1023, 515)])


def operands(N, K, M):
    x = RNG.standard_normal((N, K)).astype(np.float32)
    w = (RNG.standard_normal((K, M)) / np.sqrt(K)).astype(np.float32)
    b = RNG.standard_normal(M).astype(np.float32)
    return x, w, b


@pytest.mark.parametrize("version", matmul.VERSIONS)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_linear(version, shape):
    x, w, b = operands(*shape)
    out = poisoned((shape[0], shape[2]))
    matmul.linear(device(x), device(w), device(b), out=out, version=version)
    assert_close(out.copy_to_host(), layers.linear(x, w, b), "linear")


@pytest.mark.parametrize("version", matmul.VERSIONS)
def test_linear_with_a_fused_residual_in_place(version):
    N, K, M = sizes((3, 20, 20), (65, 768, 768))
    x, w, b = operands(N, K, M)
    r = RNG.standard_normal((N, M)).astype(np.float32)
    acc = device(r)
    matmul.linear(device(x), device(w), device(b), out=acc, residual=acc, version=version)
    assert_close(acc.copy_to_host(), r + layers.linear(x, w, b), "linear")


def test_every_version_gives_the_same_bits():
    """Each version sums an output's products in k order from zero, then adds the bias
    and the residual, so the backend's choice of version by rows keeps batch invariance."""
    N, K, M = sizes((5, 40, 37), (65, 768, 768))  # K not a multiple of the tiles' 16
    x, w, b = operands(N, K, M)
    r = RNG.standard_normal((N, M)).astype(np.float32)
    outs = [matmul.linear(device(x), device(w), device(b), residual=device(r), version=v).copy_to_host()
            for v in matmul.VERSIONS]
    for version, out in zip(matmul.VERSIONS[1:], outs[1:]):
        assert np.array_equal(out, outs[0]), f"v{version} and v1 differ"
