"""Two replicas behind HAProxy (deploy/haproxy.cfg), on loopback, under 32
concurrent clients: one replica is stopped gracefully (SIGTERM) and no
request fails; one is killed (SIGKILL) and only the requests it was serving
fail, while new requests keep succeeding. .ci/run installs haproxy."""

import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from test_server import Client, without_simulator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
from bench_replicas import balancer_config  # noqa: E402 (the one place that rewrites the config's ports)

HAPROXY = shutil.which("haproxy")
pytestmark = pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed (apt-get install haproxy; "
                                                        ".ci/run does)")
CLIENTS = 32


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(ready, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("not ready in time")


def start_replica(model_dir, port):
    proc = subprocess.Popen([sys.executable, "-m", "inference.server", "--model", str(model_dir), "--device", "cpu",
                             "--port", str(port), "--log-level", "WARNING", "--drain-timeout", "10",
                             "--max-pending", "64"],  # one replica alone can hold every client
                            env=without_simulator())
    wait_until(lambda: Client(port).request("GET", "/health")[0] == 200)
    return proc


def start_balancer(tmp_path, front, ports):
    """deploy/haproxy.cfg as it is, but for this test's ports."""
    path = tmp_path / "haproxy.cfg"
    path.write_text(balancer_config(front, ports))
    proc = subprocess.Popen([HAPROXY, "-f", str(path), "-db"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: Client(front).request("GET", "/health")[0] == 200)
    return proc


class Load:
    """CLIENTS threads sending short generations through the balancer until stopped;
    each outcome (a status, or the exception's name) with the time it ended."""

    def __init__(self, port):
        self.port, self.stop, self.outcomes = port, threading.Event(), []
        self.pool = ThreadPoolExecutor(CLIENTS)
        self.futures = [self.pool.submit(self.client, i) for i in range(CLIENTS)]

    def client(self, i):
        while not self.stop.is_set():
            try:
                status = Client(self.port).post("/generate", {"prompt": "fn", "max_new_tokens": 20, "seed": i})[0]
            except Exception as e:  # a connection the killed replica dropped
                status = type(e).__name__
            self.outcomes.append((time.monotonic(), status))

    def finish(self):
        self.stop.set()
        for f in self.futures:
            f.result()
        self.pool.shutdown()
        return Counter(status for _, status in self.outcomes)


def test_a_graceful_stop_and_a_crash_behind_haproxy(tiny_model_dir, tmp_path):
    ports, front = [free_port(), free_port()], free_port()
    replicas = [start_replica(tiny_model_dir, port) for port in ports]
    balancer = start_balancer(tmp_path, front, ports)
    try:
        # SIGTERM one replica mid-load: it drains, the balancer moves on, nothing fails.
        load = Load(front)
        time.sleep(1.0)
        replicas[0].send_signal(signal.SIGTERM)
        assert replicas[0].wait(timeout=30) == 0
        time.sleep(2.0)
        graceful = load.finish()
        print(f"\nSIGTERM one of two replicas under {CLIENTS} clients: {dict(graceful)}")
        assert set(graceful) == {200} and graceful[200] > 100

        # A new replica in its place, then kill -9 the other one mid-load.
        replicas[0] = start_replica(tiny_model_dir, ports[0])
        time.sleep(3.0)  # the health checks see it up (rise 2, every 1 s)
        load = Load(front)
        time.sleep(1.0)
        killed_at = time.monotonic()
        replicas[1].kill()
        replicas[1].wait(timeout=10)
        time.sleep(4.0)
        crashed = load.finish()
        late = Counter(status for t, status in load.outcomes if t > killed_at + 2.5)  # after 2 checks + a margin
        print(f"kill -9 one of two replicas under {CLIENTS} clients: {dict(crashed)}; "
              f"from 2.5 s after the kill: {dict(late)}")
        failed = sum(n for status, n in crashed.items() if status != 200)
        assert failed <= CLIENTS, "more failures than requests in flight on the killed replica"
        assert set(late) == {200} and late[200] > 100
    finally:
        balancer.terminate()
        for proc in replicas:
            proc.kill()
