"""The warp-shuffle reductions' own code, which the simulator cannot run
inside a kernel (it has no shuffles): each of 32 Python threads plays a lane
and runs the device function's Python body, with shfl_xor_sync emulated by
a barrier (every lane posts its value, then reads its partner's). A wrong
butterfly (a missing offset, a wrong partner) leaves lanes disagreeing."""

import math
import threading
import types

import numpy as np
import pytest

from inference.kernels.common import WARP, warp_max_shuffle, warp_sum_shuffle


def run_lanes(device_fn, values):
    """device_fn's body in WARP threads, lane i starting from values[i]; returns every lane's result."""
    barrier = threading.Barrier(WARP)
    posted, results, lane_of = [None] * WARP, [None] * WARP, threading.local()

    class EmulatedWarp:
        @staticmethod
        def shfl_xor_sync(mask, value, offset):
            assert mask == 0xFFFFFFFF, "every lane takes part"
            posted[lane_of.i] = value
            barrier.wait()
            got = posted[lane_of.i ^ offset]
            barrier.wait()  # all have read before the next round overwrites
            return got

    py_func = device_fn.py_func
    body = types.FunctionType(py_func.__code__, {**py_func.__globals__, "cuda": EmulatedWarp})

    def lane(i):
        lane_of.i = i
        results[i] = body(values[i])
    threads = [threading.Thread(target=lane, args=(i,)) for i in range(WARP)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert not any(t.is_alive() for t in threads), "a lane is stuck at the barrier"
    return results


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_warp_sum_gives_every_lane_the_total(seed):
    values = np.random.default_rng(seed).standard_normal(WARP).astype(np.float32)
    got = run_lanes(warp_sum_shuffle, list(values))
    assert len({float(v) for v in got}) == 1, "lanes disagree"  # a + b == b + a at every level
    assert math.isclose(float(got[0]), float(values.astype(np.float64).sum()), rel_tol=1e-5, abs_tol=1e-5)


def test_warp_max_gives_every_lane_the_max_even_with_empty_lanes():
    values = np.random.default_rng(3).standard_normal(WARP).astype(np.float32)
    values[5:] = -np.inf  # lanes with nothing to look at (a short row), as in softmax v3
    got = run_lanes(warp_max_shuffle, list(values))
    assert all(float(v) == float(values.max()) for v in got)
