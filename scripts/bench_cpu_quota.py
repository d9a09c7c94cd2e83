"""The engine in a CPU quota smaller than the machine (a container's --cpus,
a Kubernetes CPU limit): its threads sized by the quota, as the backends
size them (inference/backends/cores.py), against a thread per core of the
machine, as Numba and OpenBLAS alone would start.

    sudo python scripts/bench_cpu_quota.py [--device cpu-numba] [--quota 1] [--rounds 5] [--new-tokens 256]

Makes a child of this process's cgroup with a quota of --quota cores (root
and a writable cgroup file system needed; cgroup v1 or v2), and runs the
engine in-process in it, in a fresh process each time: 8 requests at once,
--new-tokens each (prompts: lines of Rust), the two ways taking turns
with a run outside the quota, --rounds times; the median round counts.
The threads: Numba's for cpu-numba's step, NumPy's OpenBLAS for cpu's.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child(threads: str, device: str, new_tokens: int) -> None:
    """In the quota (or not): the engine with 8 requests; print its tokens/s and threads as JSON."""
    from bench_batching import rust_lines
    from inference import Settings, load_model
    from inference.backends import numba_cpu, numpy_backend
    from inference.engine import Engine
    if threads == "per-core":  # as Numba and OpenBLAS alone would: a thread for each core the process may run on
        numba_cpu.cores_allowed = numpy_backend.cores_allowed = lambda: len(os.sched_getaffinity(0))
    model = load_model(ROOT / "data" / "claude-rust-small", device=device)
    engine = Engine(model, max_batch=16)
    prompts = [model.tokenizer.encode(line) for line in rust_lines()[:8]]
    for request in [engine.submit(p, Settings(max_new_tokens=4, seed=0)) for p in prompts]:  # warm
        list(request.stream())
    t0 = time.perf_counter()
    requests = [engine.submit(p, Settings(max_new_tokens=new_tokens, seed=i)) for i, p in enumerate(prompts)]
    tokens = sum(len(list(r.stream())) for r in requests)
    rate = tokens / (time.perf_counter() - t0)
    engine.stop()
    used = model.blas_threads if device == "cpu" else model.cores if model.on_all_cores else 1
    print(json.dumps({"tok_s": rate, "threads": used}))


def run(threads: str, device: str, new_tokens: int, cgroup_procs: Path | None) -> dict:
    command = [sys.executable, __file__, "--child", threads, "--device", device, "--new-tokens", str(new_tokens)]
    if cgroup_procs is not None:  # the shell enters the cgroup, then becomes Python (children stay in it)
        command = ["sh", "-c", f'echo $$ > {cgroup_procs} && exec "$@"', "sh", *command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def quota_limits(cores: float) -> dict:  # a cgroup's files for a quota of `cores`, in v2 and in v1 (cgroups.py)
    return {2: {"cpu.max": f"{int(cores * 100000)} 100000"},
            1: {"cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": str(int(cores * 100000))}}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=("cpu-numba", "cpu"), default="cpu-numba")
    ap.add_argument("--quota", type=float, default=1.0, help="cores of CPU time the quota allows")
    ap.add_argument("--rounds", type=int, default=5)
    # Long enough to span several of the quota's 100 ms periods: a short run ends before it is throttled
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--child", choices=("by-quota", "per-core"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "scripts"))
    if args.child:
        return child(args.child, args.device, args.new_tokens)
    from cgroups import limited_cgroup
    try:
        cgroup = limited_cgroup("cpu", quota_limits(args.quota))
    except OSError as e:
        raise SystemExit(e)
    procs = cgroup / "cgroup.procs"
    runs = {"in the quota, threads sized by the quota (cores.py)": ("by-quota", procs),
            "in the quota, a thread per core": ("per-core", procs),
            "no quota, a thread per core": ("per-core", None)}
    results = {name: [] for name in runs}
    try:
        for _ in range(args.rounds):
            for name, (threads, procs_file) in runs.items():
                results[name].append(run(threads, args.device, args.new_tokens, procs_file))
    finally:
        cgroup.rmdir()
    print(f"{args.device}, 8 requests x {args.new_tokens} tokens in-process; a quota of {args.quota:g} cores on a "
          f"machine of {len(os.sched_getaffinity(0))}; median of {args.rounds} rounds")
    print("| where, threads | threads | tok/s | vs a thread per core in the quota |")
    print("| --- | --- | --- | --- |")
    rate = {name: statistics.median(r["tok_s"] for r in rounds) for name, rounds in results.items()}
    for name, rounds in results.items():
        print(f"| {name} | {rounds[0]['threads']} | {rate[name]:,.0f} | "
              f"{rate[name] / rate['in the quota, a thread per core']:.2f}x |")

if __name__ == "__main__":
    main()
