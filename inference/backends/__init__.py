"""Backends: the same small interface on NumPy (the reference), on the CPU
with the engine's step compiled (numba_cpu.py), and on CUDA (the kernels).

    model = load_model("data/claude-rust-small", device="cpu")   # or "cpu-numba", "cuda", "auto"
    model.forward(ids)            # [T] -> [T, V] float32 logits (numpy)
    session = model.new_session() # one sequence and its KV cache
    session.step(ids, sampling) -> Pick (the next id; its logprob if asked)
    pool = model.new_kv_pool(n_blocks, block_size)   # the paged KV cache of many sequences
    model.step_batch(pool, chunks) -> one Pick (or None) per chunk   # one step of the engine

`Model` and `Session` below write the interface down; every backend has it.
"""

import importlib
import logging
from pathlib import Path
from typing import Protocol

import numpy as np

from ..checkpoint import load_checkpoint
from ..reference.sampling import Pick, Sampling
from ..tokenizer import Tokenizer


class Session(Protocol):
    def step(self, ids, sampling: Sampling) -> Pick:
        """Feed the new ids (a prompt, then one token at a time); pick the next token
        (reference/sampling.py says how)."""


class Model(Protocol):
    name: str
    device: str  # "cpu", "cpu-numba" or "cuda"
    config: object  # reference.model.GPT2Config
    tokenizer: Tokenizer

    def forward(self, ids) -> np.ndarray:
        """[T] ids -> [T, V] float32 logits, on the host."""

    def new_session(self) -> Session:
        """One sequence with a KV cache of its own: generation.generate_tokens uses it."""

    def new_kv_pool(self, n_blocks: int, block_size: int, max_rows: int | None = None, max_seqs: int | None = None):
        """The paged KV cache the engine's sequences share. max_rows, max_seqs: the most
        tokens and sequences one step holds, for a backend that keeps a step's buffers
        allocated (None: as many as the pool has slots)."""

    def step_batch(self, pool, chunks) -> list[Pick | None]:
        """One step over many sequences (reference/paged.py's Chunk): the next token of
        each chunk that samples, None for a piece of a prompt that goes on."""


class DeviceError(RuntimeError):
    """The requested device cannot be used here."""


log = logging.getLogger("inference.backends")


def why_not_cuda() -> str | None:
    """None when the CUDA backend can run: a real GPU, or Numba's CUDA
    simulator (NUMBA_ENABLE_CUDASIM=1, for tests: every thread in Python);
    else why not, in words."""
    try:
        cuda = importlib.import_module("numba.cuda")
    except Exception as e:  # most often the CUDA libraries it loads as it is imported (libcudart) are missing
        first_line = str(e).splitlines()[0] if str(e) else ""
        return (f"numba-cuda cannot load ({type(e).__name__}: {first_line}); "
                "pip install -e '.[cuda]' brings the CUDA libraries it needs")
    if not cuda.is_available():
        return "no usable CUDA GPU was found (numba.cuda.is_available() is False)"
    return None


def cuda_available() -> bool:
    return why_not_cuda() is None


def simulating() -> bool:  # Numba's CUDA simulator is on: a test tool, never a GPU to serve on
    from numba import config
    return bool(config.ENABLE_CUDASIM)


def real_gpu_available() -> bool:
    return not simulating() and cuda_available()


def gpu_present() -> bool:  # an NVIDIA driver's device files: a GPU is here, whether or not numba-cuda can use it
    return any(Path("/dev").glob("nvidia[0-9]*"))


DEVICES = ("cpu", "cpu-numba", "cuda", "auto")


def resolve_device(device: str) -> str:
    """The device asked for -> the one to load on. auto: the fastest here, a
    GPU if one is usable (never the simulator: far too slow to serve with),
    else the CPU with the step compiled (load_model falls back to cpu, the
    NumPy reference, where that cannot compile)."""
    if device not in DEVICES:
        raise DeviceError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if device == "auto":
        if real_gpu_available():
            return "cuda"
        if gpu_present() and not simulating():
            log.warning("device auto: a GPU is here, but %s; loading on cpu-numba", why_not_cuda())
        return "cpu-numba"
    if device == "cuda" and (reason := why_not_cuda()) is not None:
        raise DeviceError(f"--device cuda was asked for, but {reason}")
    return device


def load_model(path, device: str = "cpu", cuda_graphs: bool = True) -> Model:
    """A Hugging Face GPT-2 folder -> a model on the chosen device. cuda_graphs
    (cuda only): replay the engine's decode steps as CUDA graphs; False launches
    every kernel of every step."""
    path = Path(path)
    on = resolve_device(device)
    config, params = load_checkpoint(path)
    tokenizer = Tokenizer.from_dir(path)
    if tokenizer.vocab_size > config.vocab_size:
        raise ValueError(f"{path}: the tokenizer has {tokenizer.vocab_size} tokens, "
                         f"the model only {config.vocab_size}")
    if on == "cuda":
        from .cuda_backend import CudaModel
        return CudaModel(config, params, tokenizer, path.name, graphs=cuda_graphs)
    if on == "cpu-numba":
        try:
            from .numba_cpu import NumbaCpuModel
            return NumbaCpuModel(config, params, tokenizer, path.name)
        except Exception as e:  # its loops do not compile or run here: an error if asked for by name
            if device != "auto":
                raise
            log.warning("device auto: cpu-numba cannot run here (%s: %s); loading on cpu, the NumPy reference",
                        type(e).__name__, e)
    from .numpy_backend import NumpyModel
    return NumpyModel(config, params, tokenizer, path.name)
