#!/usr/bin/env bash
# The whole GPU check in one call, for a machine lent for a few minutes: what the device and the
# libraries are, then the kernel parity tests at realistic sizes and the CUDA backend end to end
# (the command of `tox -e gpu`, without the compile-only PTX check CI already runs), then every
# figure scripts/bench_kernels.py prints (kernels beside PyTorch, decode tokens/s, launches per
# step and the step replayed as a CUDA graph, the engine's batch), then the server on cuda at 1 and
# 8 clients against --max-batch 1, its decode steps replayed as CUDA graphs beside the same server
# launching every kernel (--cuda-graphs off; scripts/bench_batching.py). Each part writes its log to $OUT
# (else gpu-results/) as it goes, so a run stopped by a time limit still leaves what it finished.
#   bash scripts/gpu_check.sh        # needs numba-cuda, torch and transformers; no network
# With NumPy 2.5, numba-cuda 0.30.4 compiles no kernel (it registers np.row_stack, which 2.5
# removed): where the machine has 2.5 and no package index, bring a NumPy 2.4 wheel.
# Limits in seconds (together under a 10-minute call): TEST_TIMEOUT (default 120; the tests took 47 s
# on an H200), BENCH_TIMEOUT (240), SERVER_TIMEOUT (240: four servers, the one with neither
# batching nor graphs the slowest, ~15 s a short try on an H200); PYTHON (python3).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-results}
mkdir -p "$out"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 PYTHONHASHSEED=0
py=${PYTHON:-python3}

{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  $py -c "from importlib.metadata import version as v; import platform
print('python', platform.python_version(), '| numpy', v('numpy'), '| numba', v('numba'), '| numba-cuda',
      v('numba-cuda'), '| torch', v('torch'), '| transformers', v('transformers'))"
} 2>&1 | tee "$out/device.txt"

INFERENCE_REQUIRE_GPU=1 timeout "${TEST_TIMEOUT:-120}" $py -m pytest tests/kernels -q -ra -p no:cacheprovider \
  --ignore=tests/kernels/test_ptx.py 2>&1 | tee "$out/tests.txt"
tests=$?
timeout "${BENCH_TIMEOUT:-240}" $py scripts/bench_kernels.py 2>&1 | tee "$out/bench_kernels.txt"
bench=$?
timeout "${SERVER_TIMEOUT:-240}" $py scripts/bench_batching.py --servers-only --devices "cuda,cuda --cuda-graphs off" \
  --clients 1,8 --rounds 1 --short-tries 3 2>&1 | tee "$out/bench_batching.txt"
server=$?

echo "exit status: tests $tests, bench_kernels $bench, bench_batching $server (124: stopped at its time limit)" \
  | tee -a "$out/device.txt"
exit $((tests != 0 || bench != 0 || server != 0))
