"""Every kernel, its argument types and block sizes, and what the CUDA
compiler makes of it for a GPU that does not have to be here.

A kernel can be right under the simulator and still fail to launch on a GPU:
each thread needs registers and each block shared memory, and a block whose
threads ask for more than a multiprocessor has is refused ("too many
resources requested for launch"). Those numbers are known only after
compiling, so this module compiles every kernel to PTX (numba-cuda's NVVM)
and assembles the PTX to machine code for one architecture with nvJitLink,
both from the CUDA toolkit wheels (`pip install -e .[cuda]`), no GPU needed:

    python scripts/kernel_resources.py            # the table, for sm_90
    pytest tests/kernels/test_ptx.py              # the same, as checks

Used by those two; the kernels and launchers do not import it.
"""

import math
import re
from contextlib import contextmanager
from dataclasses import dataclass

from numba import float32, int32, int64

F1, F2, FA = float32[::1], float32[:, ::1], float32[:, :]  # C-contiguous 1-d, 2-d; any-layout 2-d (a slice)
I1, I2 = int32[::1], int32[:, ::1]


@dataclass(frozen=True)
class Entry:
    kernel: object  # the @cuda.jit dispatcher
    signature: tuple  # Numba types of its arguments, as the launcher passes them
    threads: int  # threads per block the launcher uses by default on a GPU
    max_threads: int  # the most threads per block the launcher can be asked for


def kernels() -> dict:
    """name -> Entry, for every kernel in inference/kernels."""
    from . import attention, common, embedding, gelu, layernorm, matmul, paged, sampling, softmax
    any_block = common.MAX_BLOCK  # launchers with a block_size argument accept up to this
    block, tile2 = common.BLOCK, matmul.TILE * matmul.TILE
    rows = (F2, F1, F1, float32, F2)
    lin = (F2, F2, F1, F2, F2)
    att = (FA, F2, F2, int64, float32, F2)
    return {
        "layer_norm_v1": Entry(layernorm.layer_norm_v1_kernel, rows, block, any_block),
        "layer_norm_v2": Entry(layernorm.layer_norm_v2_kernel, rows, block, any_block),
        "layer_norm_v3": Entry(layernorm.layer_norm_v3_kernel, rows, block, any_block),
        "gelu_v1": Entry(gelu.gelu_v1_kernel, (F1, F1), block, any_block),
        "gelu_v2": Entry(gelu.gelu_v2_kernel, (F1, F1), block, any_block),
        "softmax_v1": Entry(softmax.softmax_v1_kernel, (F2, F2), block, any_block),
        "softmax_v2": Entry(softmax.softmax_v2_kernel, (F2, F2), block, any_block),
        "softmax_v3": Entry(softmax.softmax_v3_kernel, (F2, F2), block, any_block),
        "linear_v1": Entry(matmul.linear_v1_kernel, lin, block, block),
        "linear_v2": Entry(matmul.linear_v2_kernel, lin, tile2, tile2),
        "linear_v3": Entry(matmul.linear_v3_kernel, lin, tile2, tile2),
        "store_kv": Entry(attention.store_kv_kernel, (F2, F2, F2, int64), block, block),
        "attention_v1": Entry(attention.attention_v1_kernel, att, common.WARP, common.WARP),
        "attention_v2": Entry(attention.attention_v2_kernel, att, common.WARP, common.WARP),
        "attention_v3": Entry(attention.attention_v3_kernel, att, block, any_block),
        "embedding": Entry(embedding.embedding_kernel, (F2, F2, I1, int64, F2), block, block),
        "sample": Entry(sampling.sample_kernel, (F1, float32, int32, float32, float32, F1, I1, I1),
                        common.SAMPLE_BLOCK, common.MAX_BLOCK // 2),
        "sample_batch": Entry(sampling.sample_batch_kernel, (F2, F2, I2, F2, I2, I1, F1),
                              common.SAMPLE_BLOCK, common.MAX_BLOCK // 2),
        "penalize": Entry(sampling.penalize_kernel, (F2, I1, F1, I1, F1), common.SAMPLE_BLOCK, common.MAX_BLOCK // 2),
        "store_kv_paged": Entry(paged.store_kv_kernel, (F2, F2, F2, I1), block, block),
        "paged_attention": Entry(paged.paged_attention_kernel, (FA, F2, F2, I1, I1, I2, int32, int32, float32, F2),
                                 block, paged.MAX_ATTENTION_THREADS),
        "embedding_at": Entry(paged.embedding_at_kernel, (F2, F2, I1, I1, F2), block, block),
        "gather_rows": Entry(paged.gather_rows_kernel, (F2, I1, F2), block, block),
    }


@contextmanager
def pretend_gpu(cc):
    """numba-cuda compiles some device functions for "the current GPU" and
    asks the driver which one that is; with no GPU there is no driver to ask,
    so for the duration we answer `cc` ourselves."""
    import numba.cuda.dispatcher as dispatcher

    class Target:
        compute_capability = cc

    saved = dispatcher.get_current_device
    dispatcher.get_current_device = lambda: Target()
    try:
        yield
    finally:
        dispatcher.get_current_device = saved


def compile_ptx(entry: Entry, cc=(9, 0)) -> str:
    from numba import cuda
    with pretend_gpu(cc):
        ptx, _ = cuda.compile_ptx(entry.kernel.py_func, entry.signature, cc=cc)
    return ptx


@dataclass(frozen=True)
class Resources:
    registers: int  # per thread
    shared: int  # bytes of static shared memory per block
    stack: int  # bytes of per-thread stack (local arrays live here)
    spill_stores: int  # bytes of registers spilled to local memory: a silent slowdown
    spill_loads: int


def assemble(ptx: str, cc=(9, 0)) -> Resources:
    """Assemble PTX to machine code for sm_<cc> with nvJitLink; read back what ptxas reports."""
    from cuda.bindings import nvjitlink
    arch = f"-arch=sm_{cc[0]}{cc[1]}"
    handle = nvjitlink.create(3, [arch, "-verbose", "-O3"])
    try:
        data = ptx.encode()
        nvjitlink.add_data(handle, nvjitlink.InputType.PTX, data, len(data), "kernel.ptx")
        nvjitlink.complete(handle)
        log = bytearray(nvjitlink.get_info_log_size(handle))
        nvjitlink.get_info_log(handle, log)
    finally:
        nvjitlink.destroy(handle)
    return parse_ptxas_log(log.decode(errors="replace"))


def parse_ptxas_log(log: str) -> Resources:
    def number(pattern):
        found = re.search(pattern, log)
        if not found:
            raise ValueError(f"no {pattern!r} in the assembler's report:\n{log}")
        return int(found.group(1))
    return Resources(registers=number(r"[Uu]sed (\d+) registers"), shared=number(r"(\d+) bytes smem"),
                     stack=number(r"(\d+) bytes stack frame"), spill_stores=number(r"(\d+) bytes spill stores"),
                     spill_loads=number(r"(\d+) bytes spill loads"))


# One Hopper (sm_90) multiprocessor, from the CUDA programming guide's table
# of compute capabilities.
MAX_THREADS_PER_BLOCK = 1024
REGISTERS_PER_SM = 65536  # also the most one block may use
REGISTER_UNIT = 256  # registers are handed to a warp in multiples of this
MAX_REGISTERS_PER_THREAD = 255
STATIC_SHARED_PER_BLOCK = 48 * 1024  # more needs dynamic shared memory and an opt-in
SHARED_PER_SM = 228 * 1024
# The system's own share of each block's shared memory. The sm_90 report
# seems to count it already (1 KB more than for sm_80), so occupancy may be
# underestimated where shared memory is what limits it; it limits none here.
SHARED_RESERVED_PER_BLOCK = 1024
THREADS_PER_SM = 2048
BLOCKS_PER_SM = 32


def registers_per_block(resources: Resources, threads: int) -> int:
    per_warp = math.ceil(resources.registers * 32 / REGISTER_UNIT) * REGISTER_UNIT
    return per_warp * math.ceil(threads / 32)


def fits(resources: Resources, threads: int) -> bool:
    """Can a block of `threads` threads of this kernel launch at all?"""
    return (threads <= MAX_THREADS_PER_BLOCK and resources.registers <= MAX_REGISTERS_PER_THREAD
            and registers_per_block(resources, threads) <= REGISTERS_PER_SM
            and resources.shared <= STATIC_SHARED_PER_BLOCK)


def occupancy(resources: Resources, threads: int) -> float:
    """Resident threads per multiprocessor over the most it can hold: what
    registers, shared memory and the block limit leave room for."""
    blocks = min(BLOCKS_PER_SM, THREADS_PER_SM // threads,
                 REGISTERS_PER_SM // registers_per_block(resources, threads),
                 SHARED_PER_SM // (resources.shared + SHARED_RESERVED_PER_BLOCK))
    return blocks * threads / THREADS_PER_SM
