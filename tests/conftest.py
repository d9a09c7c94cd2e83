import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from numba import config

from inference.tokenizer import Tokenizer
from model_helpers import random_tensors

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_MODEL = ROOT / "data" / "claude-rust-small"


def lock_simulator_shared_arrays(kernelapi):
    """The simulator gives a block's threads one shared array per source line,
    but looks it up and creates it without a lock (numba-cuda 0.30): threads
    that reach a new line together can each create their own, and a block
    reduction then adds up several arrays. Same lookup, under a lock."""
    from numba.core import types
    from numba.np import numpy_support
    lock = threading.Lock()

    def array(self, shape, dtype, alignment=None):
        if shape == 0 or alignment is not None:  # dynamic shared memory or an error: unchanged
            return unlocked(self, shape, dtype, alignment)
        caller = sys._getframe(1)
        key = caller.f_code.co_filename, caller.f_lineno
        with lock:
            if key not in self._allocations:
                as_numpy = numpy_support.as_dtype(dtype) if isinstance(dtype, types.Type) else dtype
                self._allocations[key] = np.empty(shape, as_numpy)
            return self._allocations[key]

    unlocked = kernelapi.FakeCUDAShared.array
    kernelapi.FakeCUDAShared.array = array


if config.ENABLE_CUDASIM:
    from numba.cuda.simulator import kernelapi
    if hasattr(kernelapi, "FakeCUDAShared"):
        lock_simulator_shared_arrays(kernelapi)
        # Each simulated CUDA thread is a Python thread. At a syncthreads the
        # waiting threads need the GIL back, which a running thread gives up
        # once per switch interval (5 ms by default), so a kernel with hundreds
        # of barriers (sampling's bisection) mostly waits. At 0.1 ms it runs
        # ~6x faster, and thread switches come often enough to have shown the
        # race above.
        sys.setswitchinterval(1e-4)


@pytest.fixture
def limited_cgroup():
    """make(controller, {version: {file: text}}) -> a new cgroup's folder with those limits
    (scripts/cgroups.py), removed after the test; skips where this machine lets no test make one."""
    if str(ROOT / "scripts") not in sys.path:
        sys.path.insert(0, str(ROOT / "scripts"))
    from cgroups import limited_cgroup as make_cgroup
    made = []

    def make(controller: str, limits: dict) -> Path:
        try:
            made.append(make_cgroup(controller, limits))
        except OSError as e:
            pytest.skip(str(e))
        return made[-1]

    yield make
    for folder in made:
        folder.rmdir()  # empty again: the test's processes have ended


@pytest.fixture(scope="session")
def shipped_model_dir():
    return SHIPPED_MODEL


@pytest.fixture(scope="session")
def shipped_tokenizer(shipped_model_dir):
    return Tokenizer.from_dir(shipped_model_dir)


TINY = dict(n_layer=2, n_head=2, n_embd=32, n_ctx=64)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, shipped_tokenizer):
    """A small random GPT-2 with the shipped tokenizer, in Hugging Face layout."""
    from inference.checkpoint import save_checkpoint
    from inference.reference.model import GPT2Config

    config = GPT2Config(vocab_size=shipped_tokenizer.vocab_size, **TINY)
    path = tmp_path_factory.mktemp("models") / "tiny-random"
    save_checkpoint(path, config, random_tensors(config), shipped_tokenizer)
    return path


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir):
    from inference import load_model

    return load_model(tiny_model_dir)
