"""Compile-only check: every kernel compiles for sm_90 (Hopper) with the CUDA
toolkit's NVVM, and its PTX has no float64 instruction. Needs no GPU (tox -e
ptx installs the toolkit from pip); the simulator cannot run it, since it
never compiles anything."""

import re

import pytest
from numba import config, float32, int32, int64

pytestmark = [
    pytest.mark.compile_only,
    pytest.mark.skipif(bool(config.ENABLE_CUDASIM), reason="the simulator compiles nothing: run `tox -e ptx`"),
]

F1, F2, FA = float32[::1], float32[:, ::1], float32[:, :]  # C-contiguous 1-d, 2-d; any-layout 2-d (a slice)
I1 = int32[::1]


def kernels():
    from inference.kernels import attention, embedding, gelu, layernorm, matmul, sampling, softmax
    return {
        "layer_norm_v1": (layernorm.layer_norm_v1_kernel, (F2, F1, F1, float32, F2)),
        "layer_norm_v2": (layernorm.layer_norm_v2_kernel, (F2, F1, F1, float32, F2)),
        "layer_norm_v3": (layernorm.layer_norm_v3_kernel, (F2, F1, F1, float32, F2)),
        "gelu_v1": (gelu.gelu_v1_kernel, (F1, F1)),
        "gelu_v2": (gelu.gelu_v2_kernel, (F1, F1)),
        "softmax_v1": (softmax.softmax_v1_kernel, (F2, F2)),
        "softmax_v2": (softmax.softmax_v2_kernel, (F2, F2)),
        "softmax_v3": (softmax.softmax_v3_kernel, (F2, F2)),
        "linear_v1": (matmul.linear_v1_kernel, (F2, F2, F1, F2, F2)),
        "linear_v2": (matmul.linear_v2_kernel, (F2, F2, F1, F2, F2)),
        "linear_v3": (matmul.linear_v3_kernel, (F2, F2, F1, F2, F2)),
        "store_kv": (attention.store_kv_kernel, (F2, F2, F2, int64)),
        "attention_v1": (attention.attention_v1_kernel, (FA, F2, F2, int64, float32, F2)),
        "attention_v2": (attention.attention_v2_kernel, (FA, F2, F2, int64, float32, F2)),
        "attention_v3": (attention.attention_v3_kernel, (FA, F2, F2, int64, float32, F2)),
        "embedding": (embedding.embedding_kernel, (F2, F2, I1, int64, F2)),
        "sample": (sampling.sample_kernel, (F1, float32, int32, float32, float32, F1, I1, I1)),
    }


class Hopper:
    compute_capability = (9, 0)


@pytest.fixture(autouse=True)
def no_gpu_needed(monkeypatch):
    """numba-cuda compiles device functions for the current GPU's compute
    capability; with no GPU there is none to ask, so we answer sm_90."""
    import numba.cuda.dispatcher as dispatcher
    monkeypatch.setattr(dispatcher, "get_current_device", lambda: Hopper())


@pytest.mark.parametrize("name", sorted(kernels()))
def test_compiles_for_sm90_without_float64(name):
    from numba import cuda
    kernel, signature = kernels()[name]
    ptx, _ = cuda.compile_ptx(kernel.py_func, signature, cc=(9, 0))
    assert ".target sm_90" in ptx
    f64 = [line.strip() for line in ptx.splitlines() if re.search(r"\.f64\b", line)]
    assert not f64, f"{name}: float64 in the PTX, e.g. {f64[:3]}"


def test_every_kernel_is_listed():
    from inference import kernels as package
    import importlib
    import pkgutil
    found = set()
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"inference.kernels.{info.name}")
        found |= {name for name, obj in vars(module).items() if name.endswith("_kernel") and hasattr(obj, "py_func")}
    listed = {k.py_func.__name__ for k, _ in kernels().values()}
    assert found == listed
