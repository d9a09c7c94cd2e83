"""What a stranger and a careless client did to the server, kept fixed.

Each attack is bounded in time and in count, and runs on loopback only.
"""

import json
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from inference.server import SHUTDOWN_SECONDS, shut_down
from inference.validation import Limits
from test_server import Client, WrappedModel, serving, without_simulator

DEFAULT_LIMITS = Limits()  # a 1 MiB body, as a user runs it


def raw_exchange(port, data: bytes, timeout=10.0, shut_write=False) -> bytes:
    """Send bytes as they are, read everything until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if shut_write:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def responses_in(raw: bytes) -> list[tuple[int, dict]]:
    """Split what came back on a connection into (status, JSON body) pairs."""
    found = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", 0))
        body, raw = rest[:length], rest[length:]
        found.append((int(lines[0].split()[1]), json.loads(body) if body else None))
    return found


# ------------------------------------------------------- denial of service

def test_a_long_run_of_one_character_is_tokenized_in_bounded_time(tiny_model):
    """16,000 spaces took 20 s; 100,000 did not finish in 120 s (quadratic BPE)."""
    with serving(tiny_model, limits=DEFAULT_LIMITS) as (client, _):
        for n, char in ((100_003, " "), (100_001, "a"), (99_999, "=")):
            t0 = time.perf_counter()
            status, _, body = client.post("/tokenize", {"text": char * n})
            assert status == 200 and tiny_model.tokenizer.decode(body["ids"]) == char * n
            assert time.perf_counter() - t0 < 10, (char, n)


def test_a_huge_prompt_is_refused_before_it_is_tokenized(tiny_model):
    with serving(tiny_model, limits=DEFAULT_LIMITS) as (client, _):
        t0 = time.perf_counter()
        status, _, body = client.post("/generate", {"prompt": "=" * 1_000_000})
        assert status == 400 and "prompt is at least" in body["error"] and "at most 63" in body["error"]
        assert time.perf_counter() - t0 < 1.0


def half_requests(port, n) -> list[socket.socket]:
    """n connections that each send a request head without its end, then wait."""
    socks = []
    for _ in range(n):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Le")
        socks.append(sock)
    return socks


def test_two_hundred_slow_clients_do_not_lock_anyone_out(tiny_model):
    """40 such connections held all 32 worker threads; /health waited 29-70 s."""
    with serving(tiny_model, limits=DEFAULT_LIMITS) as (client, _):
        slow = half_requests(client.port, 200)
        try:
            time.sleep(0.5)
            for _ in range(3):
                t0 = time.perf_counter()
                assert client.request("GET", "/health")[0] == 200
                assert client.post("/generate", {"prompt": "fn", "max_new_tokens": 4})[0] == 200
                assert time.perf_counter() - t0 < 1.0
        finally:
            for sock in slow:
                sock.close()


def test_a_slow_request_is_closed_after_a_total_time_with_a_json_408(tiny_model):
    with serving(tiny_model, limits=DEFAULT_LIMITS, request_timeout=1.5) as (client, _):
        dribbler = socket.create_connection(("127.0.0.1", client.port), timeout=10)
        request = (b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Content-Length: 100\r\n\r\n{")
        t0, received = time.perf_counter(), b""
        for byte in request:  # one byte every 50 ms: a per-read timeout would never fire
            try:
                dribbler.sendall(bytes([byte]))
            except OSError:
                break
            time.sleep(0.05)
            if time.perf_counter() - t0 > 1.6:
                break
        while chunk := dribbler.recv(65536):
            received += chunk
        elapsed = time.perf_counter() - t0
        assert 1.4 < elapsed < 3.5
        [(status, body)] = responses_in(received)
        assert status == 408 and body["error_type"] == "timeout" and "1.5 s" in body["error"]
        # A body shorter than its Content-Length: a JSON 408 too, not a silent close.
        short = raw_exchange(client.port, b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                          b"Content-Length: 50\r\n\r\n{\"text\": \"a\"}")
        assert [s for s, _ in responses_in(short)] == [408]


def test_sigterm_stops_a_busy_server_within_seconds(tiny_model_dir):
    """The port closed but the process ran on for over a minute, busy tokenizing."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "inference.server", "--model", str(tiny_model_dir),
                             "--port", str(port), "--device", "cpu"], stderr=subprocess.PIPE, text=True,
                            env=without_simulator())
    try:
        assert "loading" in proc.stderr.readline() and "serving" in proc.stderr.readline()
        client = Client(port)
        with ThreadPoolExecutor(3) as pool:  # about 15 s of work for the 2 cores, under the GIL
            busy = [pool.submit(lambda: client.post("/tokenize", {"text": "=" * 1_000_000})) for _ in range(3)]
            time.sleep(1.0)
            t0 = time.perf_counter()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
            assert time.perf_counter() - t0 < SHUTDOWN_SECONDS + 2
            for request in busy:
                with pytest.raises(OSError):
                    request.result()
    finally:
        proc.kill()


def test_shutting_down_ends_a_running_stream_with_an_error_event(tiny_model):
    slow = WrappedModel(tiny_model, delay=0.05)
    with serving(slow) as (client, app):
        server = app.config["inference.server"]
        with ThreadPoolExecutor(1) as pool:
            stream = pool.submit(client.stream, {"prompt": "a", "max_new_tokens": 60})
            time.sleep(0.5)
            t0 = time.perf_counter()
            shut_down(server, app.config["inference.engine"], exit_process=False)
            events = stream.result(timeout=10)
        assert time.perf_counter() - t0 < SHUTDOWN_SECONDS
        assert events[-1][0] == "error" and "shutting down" in json.loads(events[-1][1])["error"]
        assert 1 < len(events) < 60


# --------------------------------------------------- wrong answers to bad input

@pytest.fixture(scope="module")
def server(tiny_model):
    with serving(tiny_model, limits=DEFAULT_LIMITS) as (client, _):
        yield client


@pytest.mark.parametrize("path, field", [("/generate", "prompt"), ("/generate_stream", "prompt"),
                                         ("/tokenize", "text")])
def test_a_lone_surrogate_is_a_400_naming_the_field(server, path, field):
    status, _, body = server.post(path, raw=b'{"%s": "ab\\ud800"}' % field.encode())
    assert status == 400 and body["error"].startswith(f"{field} is not valid Unicode") and "U+D800" in body["error"]
    status, _, body = server.post("/generate", {"prompt": "a", "stop_sequences": ["x", "\ud83e"]})
    assert status == 400 and body["error"].startswith("stop_sequences[1] is not valid Unicode")


def test_a_chunked_body_works(server, tiny_model):
    body = json.dumps({"text": "fn main() {}"}).encode()
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:5], body[5:])) + b"0\r\n\r\n"
    raw = raw_exchange(server.port, b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                    b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunked)
    assert responses_in(raw) == [(200, {"ids": tiny_model.tokenizer.encode("fn main() {}")})]


def test_a_chunked_body_then_another_request_on_the_same_connection(server):
    chunked = b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" \
              b"Transfer-Encoding: chunked\r\n\r\nd\r\n{\"text\": \"a\"}\r\n0\r\n\r\n"
    raw = raw_exchange(server.port, chunked + b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert [status for status, _ in responses_in(raw)] == [200, 200]


@pytest.mark.parametrize("chunks", [b"zz\r\n{}\r\n0\r\n\r\n", b"2\r\n{}XX0\r\n\r\n", b"-5\r\n{}\r\n0\r\n\r\n"])
def test_a_malformed_chunked_body_gets_one_json_400_and_the_connection_closes(server, chunks):
    raw = raw_exchange(server.port, b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                    b"Transfer-Encoding: chunked\r\n\r\n" + chunks)
    [(status, body)] = responses_in(raw)
    assert status == 400 and body["error_type"] == "bad_request" and "chunked" in body["error"]


@pytest.mark.parametrize("request_bytes, status", [
    (b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000000\r\n\r\n{", 413),
    (b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: abc\r\n\r\n{}", 400),
    (b"GET //health HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n", 505),
    (b"GET /he alth HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    (b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 70_000 + b"\r\n\r\n", 413),
])
def test_errors_cheroot_answers_itself_are_json_and_logged(server, request_bytes, status, caplog):
    caplog.set_level("INFO", logger="inference.server")
    [(got, body)] = responses_in(raw_exchange(server.port, request_bytes))
    assert got == status and set(body) == {"error", "error_type"}, body
    assert any(f" {status} " in r.getMessage() for r in caplog.records), "not in the access log"
    if status == 413 and b"5000000" in request_bytes:
        assert body["error"] == "request body is 5000000 bytes; the limit is 1048576"


def test_a_request_that_expects_100_continue_is_answered_without_waiting(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /tokenize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Expect: 100-continue\r\nContent-Length: 13\r\nConnection: close\r\n\r\n")
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b'{"text": "a"}')
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    assert b"HTTP/1.1 200 OK" in received


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", None])
def test_a_post_that_is_not_json_is_a_415(server, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    conn_body = b'{"prompt": "fn"}'
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        sock.sendall(f"POST /generate HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{head}"
                     f"Content-Length: {len(conn_body)}\r\n\r\n".encode() + conn_body)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    [(status, body)] = responses_in(received)
    assert status == 415 and body["error_type"] == "unsupported_media_type"
    assert body["error"] == f"Content-Type must be application/json, got {content_type or 'none'}"


def test_json_with_a_charset_is_json(server):
    charset = {"Content-Type": "application/json; charset=utf-8"}
    assert server.post("/tokenize", {"text": "a"}, headers=charset)[0] == 200


def test_a_repeated_key_is_a_400(server):
    status, _, body = server.post("/generate", raw=b'{"prompt": "a", "max_new_tokens": 1, "max_new_tokens": 999}')
    assert status == 400 and body["error"] == "field 'max_new_tokens' appears more than once"


def test_deep_nesting_is_a_400(server):
    status, _, body = server.post("/tokenize", raw=b"[" * 200_000)
    assert status == 400 and body["error"] == "request body is nested too deeply"


@pytest.mark.parametrize("temperature", [1e-46, 5e-324, 1e-40])
def test_a_tiny_temperature_is_greedy_over_http(server, temperature):
    greedy = server.post("/generate", {"prompt": "fn", "max_new_tokens": 8, "do_sample": False})[2]
    tiny = server.post("/generate", {"prompt": "fn", "max_new_tokens": 8, "temperature": temperature, "seed": 3})[2]
    assert tiny["text"] == greedy["text"] and tiny["finish_reason"] == greedy["finish_reason"]


# ------------------------------------------------------------------- CORS

def test_without_cors_origins_there_are_no_cors_headers(server):
    status, headers, _ = server.request("OPTIONS", "/generate", headers={
        "Origin": "http://elsewhere.test", "Access-Control-Request-Method": "POST"})
    assert status == 405 and not any(h.lower().startswith("access-control") for h in headers)
    _, headers, _ = server.request("GET", "/health", headers={"Origin": "http://elsewhere.test"})
    assert not any(h.lower().startswith("access-control") for h in headers)


def test_cors_origins_answer_preflights_and_mark_responses(tiny_model):
    with serving(tiny_model, cors_origins=["http://app.test"]) as (client, _):
        preflight = {"Origin": "http://app.test", "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "content-type"}
        status, headers, _ = client.request("OPTIONS", "/generate", headers=preflight)
        assert status == 204 and headers["Access-Control-Allow-Origin"] == "http://app.test"
        assert "POST" in headers["Access-Control-Allow-Methods"]
        assert "content-type" in headers["Access-Control-Allow-Headers"].lower()
        status, headers, _ = client.post("/tokenize", {"text": "a"}, headers={"Origin": "http://app.test"})
        assert status == 200 and headers["Access-Control-Allow-Origin"] == "http://app.test"
        status, headers, _ = client.post("/tokenize", {"text": 1}, headers={"Origin": "http://app.test"})
        assert status == 400 and headers["Access-Control-Allow-Origin"] == "http://app.test"
        status, headers, _ = client.request("OPTIONS", "/generate", headers={**preflight, "Origin": "http://evil.test"})
        assert status == 403 and "Access-Control-Allow-Origin" not in headers
    with serving(tiny_model, cors_origins=["*"]) as (client, _):
        _, headers, _ = client.request("GET", "/health", headers={"Origin": "http://any.test"})
        assert headers["Access-Control-Allow-Origin"] == "*"


# ------------------------------------------------------------- command line

@pytest.mark.parametrize("args, words", [
    (["--port", "99999"], "a port is a number from 0 to 65535"),
    (["--max-pending", "0"], "must be at least 1, got 0"),
    (["--max-new-tokens", "0"], "must be at least 1, got 0"),
    (["--max-body-kb", "-1"], "must be at least 1, got -1"),
    (["--threads", "0"], "must be at least 1"),
    (["--threads", "32"], "--threads (32) must be more than --max-batch + --max-pending (32)"),
    (["--request-timeout", "0"], "a positive number of seconds, got '0'"),
    (["--port", "http"], "a port is a number from 0 to 65535 (0: any free one), got 'http'"),
])
def test_bad_flags_stop_start_up_with_a_clear_message(args, words):
    result = subprocess.run([sys.executable, "-m", "inference.server", *args], capture_output=True, text=True,
                            timeout=30, env=without_simulator())
    assert result.returncode == 2 and words in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_help_shows_the_defaults():
    result = subprocess.run([sys.executable, "-m", "inference.server", "--help"], capture_output=True, text=True,
                            timeout=30, env=without_simulator())
    assert "(default: 8000)" in result.stdout and "(default: 16)" in result.stdout
