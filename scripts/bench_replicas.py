"""Aggregate tokens/s through HAProxy (deploy/haproxy.cfg) with one replica and
with two, on this one machine.

    python scripts/bench_replicas.py [--clients 16] [--new-tokens 128] [--rounds 3] [--device cpu]
                                     [--threads 1]

Starts two replicas (`python -m inference.server`, the shipped model, each its
own process) and HAProxy in front of one of them, then of both; --clients
client threads stream --new-tokens tokens each through the balancer, for
--rounds rounds; the median round counts. Also the same load sent to one
replica directly, without the balancer. On a 2-core machine the second
replica mostly competes with the first for the same cores: the figure shows
the balancer's cost and the per-replica rate, not more capacity. Each replica
(on --device) gets --threads threads for its loops (1: OPENBLAS_NUM_THREADS
for cpu's products, NUMBA_NUM_THREADS for cpu-numba's step): two replicas
with a thread per core each fight over the cores.
"""

import argparse
import re
import shutil
import statistics
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench_batching import Server, free_port, rust_lines, stream

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "deploy" / "haproxy.cfg"


def balancer_config(front: int, ports: list[int]) -> str:
    """deploy/haproxy.cfg listening on `front`, with one server line per replica port."""
    config = CONFIG.read_text().replace("bind 127.0.0.1:8000", f"bind 127.0.0.1:{front}")
    servers = "".join(f"    server replica{i} 127.0.0.1:{port}\n" for i, port in enumerate(ports, start=1))
    return re.sub(r"(    server replica\d+ 127\.0\.0\.1:\d+\n)+", servers, config)


def start_balancer(config_path: Path, front: int, ports: list[int]):
    config_path.write_text(balancer_config(front, ports))
    proc = subprocess.Popen([shutil.which("haproxy"), "-f", str(config_path), "-db"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(3)  # the health checks see the replicas up (rise 2, every 1 s)
    return proc


def tokens_per_second(port, clients, new_tokens, rounds):
    prompts = rust_lines()
    rates = []
    for _ in range(rounds):
        with ThreadPoolExecutor(clients) as pool:
            t0 = time.perf_counter()
            results = list(pool.map(lambda i: stream(port, prompts[i % len(prompts)], new_tokens, i), range(clients)))
            rates.append(sum(r[0] for r in results) / (time.perf_counter() - t0))
    return statistics.median(rates)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=ROOT / "data" / "claude-rust-small")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--device", default="cpu", help="each replica's --device")
    ap.add_argument("--threads", type=int, default=1,
                    help="each replica's OPENBLAS_NUM_THREADS and NUMBA_NUM_THREADS")
    args = ap.parse_args()
    # Two processes on the same cores: each gets its share, or their thread pools fight over the
    # cores (measured: 4x slower than one replica, with OpenBLAS's defaults on --device cpu).
    threads = {"OPENBLAS_NUM_THREADS": str(args.threads), "NUMBA_NUM_THREADS": str(args.threads)}
    replicas = [Server(args.model, max_batch=16, device=args.device, env=threads) for _ in range(2)]
    config_path = Path(f"/tmp/bench-replicas-{free_port()}.cfg")
    rows = {"one replica, directly": tokens_per_second(replicas[0].port, args.clients, args.new_tokens, args.rounds)}
    try:
        for n in (1, 2):
            front = free_port()
            balancer = start_balancer(config_path, front, [r.port for r in replicas[:n]])
            try:
                rows[f"{n} replica{'s' * (n > 1)} behind HAProxy"] = tokens_per_second(front, args.clients,
                                                                                       args.new_tokens, args.rounds)
            finally:
                balancer.terminate()
                balancer.wait()
    finally:
        for replica in replicas:
            replica.stop()
    print(f"{args.clients} clients streaming {args.new_tokens} tokens each; median of {args.rounds} rounds; "
          f"--device {args.device}, {args.threads} thread(s) per replica (OPENBLAS_NUM_THREADS, NUMBA_NUM_THREADS)")
    print("| setup | tok/s | per replica | vs one replica directly |")
    print("| --- | --- | --- | --- |")
    direct = rows["one replica, directly"]
    for name, rate in rows.items():
        n = 2 if name.startswith("2") else 1
        print(f"| {name} | {rate:,.0f} | {rate / n:,.0f} | {rate / direct:.2f}x |")


if __name__ == "__main__":
    main()
