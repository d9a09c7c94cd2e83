"""One comparison helper and one table of tolerances for every kernel check."""

import numpy as np
from numba import config, cuda

SIMULATOR = bool(config.ENABLE_CUDASIM)

# |got - ref| <= atol + rtol * |ref|, element-wise. The reference is the NumPy
# float32 code; the kernels add the same float32 numbers in another order
# (strided partial sums, trees, tiles), so differences are rounding, growing
# with the length of the sums, never structural (a wrong mask, eps or
# formula is off by 1e-2 or more).
TOLERANCES = {
    # sums over a row of C <= 1600 values, then a division by a std near 1:
    # ~sqrt(C) * 6e-8 relative error on outputs of size ~1-5.
    "layer_norm": dict(rtol=1e-5, atol=1e-5),
    # one tanhf per element: the device's tanhf and NumPy's tanh differ by a few ulp.
    "gelu": dict(rtol=1e-6, atol=1e-6),
    # probabilities <= 1; expf differs from NumPy's exp by ~2 ulp, the sum by ~sqrt(L) ulp.
    "softmax": dict(rtol=1e-5, atol=1e-7),
    # softmax v1: one thread adds a row's L values in sequence, so each addition rounds against the
    # whole running sum (up to L * 6e-8 relative; 3e-5 typical and 8e-5 worst at L = 50257 in float32
    # draws of this test's rows, 7e-5 seen on an H200).
    "softmax, one thread per row": dict(rtol=2e-4, atol=1e-7),
    # dot products of K <= 3072 terms of size ~1/sqrt(K): rounding ~sqrt(K) * 6e-8 * |terms|.
    "linear": dict(rtol=1e-4, atol=1e-5),
    # a dot product of D terms, an exp, and a weighted mean over S <= 1024 values.
    "attention": dict(rtol=1e-4, atol=1e-5),
    # exact: a gather and one addition, in the same order as the reference.
    "embedding": dict(rtol=0.0, atol=0.0),
    # after every layer the rounding above compounds; logits are ~1-20 in size.
    "logits": dict(rtol=1e-3, atol=1e-3),
}


def assert_close(got, ref, name):
    """Fail with the count of bad elements, the worst index and its values."""
    tol = TOLERANCES[name]
    got, ref = np.asarray(got, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert got.shape == ref.shape, f"{name}: shape {got.shape} != reference {ref.shape}"
    err = np.abs(got - ref)
    bad = ~(err <= tol["atol"] + tol["rtol"] * np.abs(ref))  # NaN (an unwritten output) counts as bad
    if bad.any():
        score = np.where(np.isnan(err), np.inf, err - tol["rtol"] * np.abs(ref))
        worst = np.unravel_index(np.argmax(score), err.shape)
        raise AssertionError(
            f"{name}: {int(bad.sum())} of {bad.size} elements off; worst at {tuple(int(i) for i in worst)}: "
            f"got {got[worst]!r}, reference {ref[worst]!r}, |diff| {err[worst]:.3g} "
            f"(allowed {tol['atol']} + {tol['rtol']} * |ref|)")
    return float(np.nanmax(err)) if err.size else 0.0


def poisoned(shape, dtype=np.float32):
    """An output array full of NaN, so an element the kernel forgot cannot pass."""
    return cuda.to_device(np.full(shape, np.nan, dtype=dtype))


def device(a, dtype=np.float32):
    return cuda.to_device(np.ascontiguousarray(a, dtype=dtype))


def sizes(simulator, gpu):
    """Tiny shapes under the simulator (every thread is Python), real ones on a GPU."""
    return simulator if SIMULATOR else gpu
