"""HTTP overhead: the server under 1, 4 and 16 concurrent clients, beside the same work in-process.

    python scripts/bench_server.py [--model data/claude-rust-small] [--requests 64] [--new-tokens 16]

Starts the real server (Bottle on Cheroot) on a free loopback port in this
process and sends requests with http.client from client threads:
/tokenize of a 2 KB Rust snippet, and greedy /generate of `--new-tokens`
tokens. For each, requests/s and p50/p99 latency, beside the same calls made
directly in Python (tokenizer.encode / generate). Also the time to first
token of /generate_stream against the in-process time to the first token.
"""

import argparse
import http.client
import json
import platform
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from inference import Settings, generate, generate_tokens, load_model
from inference.server import create_app, make_server

ROOT = Path(__file__).resolve().parent.parent


def post(port, path, body, first_event=False):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    t0 = time.perf_counter()
    conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    if first_event:
        while not resp.readline().startswith(b"data:"):
            pass
        elapsed = time.perf_counter() - t0
        resp.read()
    else:
        payload = resp.read()
        elapsed = time.perf_counter() - t0
        assert resp.status == 200, payload
    conn.close()
    return elapsed


def load(fn, clients, n):
    """n calls of fn spread over `clients` threads -> (requests/s, p50 ms, p99 ms)."""
    with ThreadPoolExecutor(clients) as pool:
        t0 = time.perf_counter()
        latencies = list(pool.map(lambda _: fn(), range(n)))
        wall = time.perf_counter() - t0
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    return n / wall, 1000 * statistics.median(latencies), 1000 * p99


def timed(fn):
    def run():
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=ROOT / "data" / "claude-rust-small")
    ap.add_argument("--requests", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=16)
    args = ap.parse_args()

    model = load_model(args.model, device="cpu")
    server = make_server(create_app(model, max_pending=64), "127.0.0.1", 0, threads=32)
    server.prepare()
    threading.Thread(target=server.serve, daemon=True).start()
    port = server.bind_addr[1]

    snippet = (ROOT / "tests" / "data" / "rust_sample.rs").read_text(encoding="utf-8")[:2048]
    prompt = "fn main() {\n    let"
    request = {"prompt": prompt, "max_new_tokens": args.new_tokens, "do_sample": False}
    settings = Settings(max_new_tokens=args.new_tokens, do_sample=False)
    lock = threading.Lock()  # in-process generations also run one at a time, as in the server

    def generate_in_process():
        with lock:
            generate(model, prompt, settings)

    work = {
        "/tokenize": (lambda: post(port, "/tokenize", {"text": snippet}), timed(lambda: model.tokenizer.encode(snippet))),
        f"/generate ({args.new_tokens} tokens)": (lambda: post(port, "/generate", request), timed(generate_in_process)),
    }
    print(f"model {model.name} on {model.device}; {platform.machine()}, Python {platform.python_version()}; "
          f"{args.requests} requests per row")
    print("| endpoint | clients | HTTP req/s | p50 ms | p99 ms | in-process req/s | p50 ms | p99 ms | HTTP / in-process time |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, (over_http, in_process) in work.items():
        for clients in (1, 4, 16):
            h = load(over_http, clients, args.requests)
            d = load(in_process, clients, args.requests)
            print(f"| {name} | {clients} | {h[0]:.1f} | {h[1]:.2f} | {h[2]:.2f} | {d[0]:.1f} | {d[1]:.2f} | "
                  f"{d[2]:.2f} | {d[0] / h[0]:.2f}x |")

    def first_token_in_process():
        t0 = time.perf_counter()
        next(iter(generate_tokens(model, model.tokenizer.encode(prompt), settings)))
        return time.perf_counter() - t0

    ttft_http = statistics.median(post(port, "/generate_stream", request, first_event=True) for _ in range(20))
    ttft_direct = statistics.median(first_token_in_process() for _ in range(20))
    print(f"time to first token, median of 20: streaming over HTTP {1000 * ttft_http:.2f} ms, "
          f"in-process {1000 * ttft_direct:.2f} ms ({ttft_http / ttft_direct:.2f}x)")
    server.stop()


if __name__ == "__main__":
    main()
