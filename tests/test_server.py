"""The server over real HTTP on loopback: every endpoint, bad requests, SSE,
concurrency, overload, disconnects, backend failures and the command line."""

import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from inference.server import OPENAPI_FILE, STREAM_INTERVAL_S, create_app, make_server, parse_args
from inference.validation import Limits

LIMITS = Limits(max_body_bytes=16 * 1024, max_new_tokens=200)


class WrappedModel:
    """The tiny model, optionally slowed down per step, held at a gate (each step
    waits until the threading.Event is set) or failing at a step."""

    def __init__(self, inner, delay=0.0, fail_at=None, gate=None):
        self.inner, self.delay, self.fail_at, self.gate = inner, delay, fail_at, gate
        self.tokenizer, self.config, self.name, self.device = inner.tokenizer, inner.config, inner.name, inner.device
        self.steps = 0

    def step(self):
        if self.gate is not None:
            self.gate.wait()
        self.steps += 1
        if self.fail_at is not None and self.steps >= self.fail_at:
            raise RuntimeError("simulated CUDA error: an illegal memory access was encountered")
        time.sleep(self.delay)

    def new_kv_pool(self, n_blocks, block_size, **bounds):
        return self.inner.new_kv_pool(n_blocks, block_size, **bounds)

    def step_batch(self, pool, chunks):
        self.step()
        return self.inner.step_batch(pool, chunks)

    def new_session(self):
        session, outer = self.inner.new_session(), self

        class Session:
            def step(self, *args, **kwargs):
                outer.step()
                return session.step(*args, **kwargs)
        return Session()


@contextmanager
def serving(model, max_pending=16, limits=LIMITS, engine_options=None, stream_interval=STREAM_INTERVAL_S,
            threads=24, **server_options):
    app = create_app(model, limits, max_pending, stream_interval, **(engine_options or {}))
    server = make_server(app, "127.0.0.1", 0, threads=threads, limits=limits, **server_options)
    app.config["inference.server"] = server
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield Client(server.bind_addr[1]), app
    finally:
        server.stop()
        app.config["inference.engine"].stop()


class Client:
    def __init__(self, port):
        self.port = port

    def request(self, method, path, body=None, raw=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        headers = {"Content-Type": "application/json", **(headers or {})} if data is not None else headers or {}
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        conn.close()
        is_json = resp.getheader("Content-Type", "").startswith("application/json")
        return resp.status, dict(resp.getheaders()), json.loads(payload) if is_json else payload.decode()

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def open_stream(self, body):
        """POST /generate_stream; the response, to be read as it arrives."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("POST", "/generate_stream", body=json.dumps(body), headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 200, resp.read()
        return resp

    def stream(self, body):
        """POST /generate_stream and parse the events as an SSE client does."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.request("POST", "/generate_stream", body=json.dumps(body), headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 200, resp.read()
        assert resp.getheader("Content-Type") == "text/event-stream; charset=utf-8"
        assert resp.getheader("Cache-Control") == "no-cache"
        events = parse_sse(resp.read().decode("utf-8"))
        conn.close()
        return events


def timed_chunks(port, body):
    """POST /generate_stream on a raw socket -> [(seconds after sending, the
    chunk's bytes)]: one per write of the server (HTTP/1.1 chunked encoding)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    data = json.dumps(body).encode()
    t0 = time.perf_counter()
    sock.sendall(b"POST /generate_stream HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data))
    received, chunks, body_at = b"", [], None
    while data := sock.recv(65536):
        now, received = time.perf_counter() - t0, received + data
        if body_at is None and b"\r\n\r\n" in received:
            assert received.startswith(b"HTTP/1.1 200 "), received
            body_at = received.index(b"\r\n\r\n") + 4
            received = received[body_at:]
        while body_at is not None and b"\r\n" in received:  # size in hex, CRLF, the chunk, CRLF
            size_end = received.index(b"\r\n")
            size = int(received[:size_end], 16)
            if len(received) < size_end + size + 4:
                break
            if size == 0:
                sock.close()
                return chunks
            chunks.append((now, received[size_end + 2:size_end + 2 + size]))
            received = received[size_end + size + 4:]
    raise AssertionError("the response ended before its last chunk")


def parse_sse(text):
    """The SSE rules: events end at a blank line; `event:` names one; `data:` lines join with \\n."""
    events, name, data = [], "message", []
    for line in text.split("\n"):
        if line == "":
            if data:
                events.append((name, "\n".join(data)))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
    assert not data, "the last event was not ended by a blank line"
    return events


@pytest.fixture(scope="module")
def server(tiny_model):
    with serving(tiny_model, max_pending=16) as (client, app):
        yield client


# ----------------------------------------------------------------- endpoints

def test_health(server):
    status, headers, body = server.request("GET", "/health")
    assert status == 200 and body == {"status": "ok", "model": "tiny-random", "device": "cpu",
                                      "running": 0, "waiting": 0, "kv_cache_usage": 0.0}


def test_tokenize_and_detokenize_round_trip(server, tiny_model):
    text = "fn main() { println!(\"héllo 🦀\"); }"
    status, _, body = server.post("/tokenize", {"text": text})
    assert status == 200 and body["ids"] == tiny_model.tokenizer.encode(text)
    status, _, body = server.post("/detokenize", {"ids": body["ids"]})
    assert status == 200 and body == {"text": text}


def test_generate_defaults_and_seed(server):
    status, _, a = server.post("/generate", {"prompt": "fn main() {", "seed": 42})
    assert status == 200 and a["finish_reason"] in ("length", "eos", "stop")
    assert set(a) == {"text", "finish_reason", "generated_tokens", "seed"} and a["seed"] == 42
    assert a["generated_tokens"] <= 128
    _, _, b = server.post("/generate", {"prompt": "fn main() {", "seed": 42})
    assert a == b
    _, _, c = server.post("/generate", {"prompt": "fn main() {"})  # the server picks a seed and says which
    _, _, d = server.post("/generate", {"prompt": "fn main() {", "seed": c["seed"]})
    assert c == d


def test_generate_stop_sequence_and_empty_prompt(server):
    _, _, free = server.post("/generate", {"prompt": "", "max_new_tokens": 30, "seed": 1, "model": "tiny-random"})
    assert free["finish_reason"] == "length" and len(free["text"]) > 10
    stop = free["text"][5:8]
    _, _, cut = server.post("/generate", {"prompt": "", "max_new_tokens": 30, "seed": 1, "stop_sequences": [stop]})
    assert cut["finish_reason"] == "stop" and free["text"].startswith(cut["text"] + stop)


def test_extreme_but_valid_values_are_served(server):
    for extra in ({"top_k": 10**30}, {"temperature": 1e30}, {"temperature": 1e-30}, {"top_p": 1e-9},
                  {"seed": 2**63 - 1}, {"prompt": "\ud83e\udd80 <|endoftext|> \u0000"}):
        status, _, body = server.post("/generate", {"prompt": "fn", "max_new_tokens": 3, **extra})
        assert status == 200 and body["generated_tokens"] <= 3, (extra, body)


def test_stream_joins_to_the_same_text_as_generate(server):
    for seed in range(6):
        request = {"prompt": "let x = ", "max_new_tokens": 25, "seed": seed, "temperature": 1.0,
                   "stop_sequences": [";", "\n"]}
        _, _, whole = server.post("/generate", request)
        events = server.stream(request)
        assert events[-1] == ("done", "[DONE]")
        tokens = [json.loads(data) for name, data in events[:-1]]
        assert all(name == "message" for name, _ in events[:-1])
        assert "".join(t["token"] for t in tokens) == whole["text"]
        assert [t["finish_reason"] for t in tokens[:-1]] == [None] * (len(tokens) - 1)
        assert tokens[-1]["finish_reason"] == whole["finish_reason"]
        assert len(tokens) == whole["generated_tokens"]


def reference_logprobs(model, prompt_ids, generated):  # float64 log-softmax of the reference logits, per token
    from inference.reference.model import forward
    from model_helpers import log_softmax_float64
    logits = forward(model.params, model.config, list(prompt_ids) + list(generated[:-1]))
    return log_softmax_float64(logits[len(prompt_ids) - 1:])  # [n, V]: the rows that chose each generated token


def test_a_fast_stream_is_written_a_few_tokens_at_a_time(tiny_model):
    """With a stream interval of 2 s and a token every 10 ms, the first token
    is written at once, and the 29 that come while the reader waits go in one
    write when the last of them comes, not when the interval ends; with no
    pause and a token every 30 ms (time for the reader to take each one
    alone), every token has a write of its own. The events are the same
    either way."""
    body = {"prompt": "fn", "max_new_tokens": 30, "seed": 3}
    writes = {}
    for interval, delay in ((0.0, 0.03), (2.0, 0.01)):
        with serving(WrappedModel(tiny_model, delay=delay), stream_interval=interval) as (client, _):
            writes[interval] = [(at, [json.loads(data) for kind, data in parse_sse(chunk.decode())
                                      if kind == "message"]) for at, chunk in timed_chunks(client.port, body)]
    token_writes = {interval: [events for _, events in chunks if events] for interval, chunks in writes.items()}
    assert [len(events) for events in token_writes[0.0]] == [1] * 30
    assert sum(token_writes[2.0], []) == sum(token_writes[0.0], [])
    first_at, first = writes[2.0][0]
    assert first_at < 0.25 and first[0]["id"] == token_writes[0.0][0][0]["id"]
    assert len(token_writes[2.0]) <= 3
    assert writes[2.0][-1][0] < 1.5, "the stream's end waited for the interval"


def test_logprobs_in_generate_and_in_the_stream(server, tiny_model):
    request = {"prompt": "fn main() {", "max_new_tokens": 10, "do_sample": False, "logprobs": 3}
    _, _, whole = server.post("/generate", request)
    tokens = whole["tokens"]
    assert len(tokens) == whole["generated_tokens"] == 10
    want = reference_logprobs(tiny_model, tiny_model.tokenizer.encode("fn main() {"), [t["id"] for t in tokens])
    for t, row in zip(tokens, want):
        assert abs(t["logprob"] - row[t["id"]]) < 1e-4
        assert [a["id"] for a in t["top_logprobs"]] == list(np.argsort(-row, kind="stable")[:3])
        assert t["top_logprobs"][0]["id"] == t["id"]  # greedy: the likeliest
        assert [a["text"] for a in t["top_logprobs"]] == [tiny_model.tokenizer.decode([a["id"]])
                                                          for a in t["top_logprobs"]]
    events = [json.loads(data) for _, data in server.stream(request)[:-1]]
    assert [(e["id"], e["logprob"], e["top_logprobs"]) for e in events] == \
        [(t["id"], t["logprob"], t["top_logprobs"]) for t in tokens]
    _, _, plain = server.post("/generate", {k: v for k, v in request.items() if k != "logprobs"})
    assert "tokens" not in plain and plain["text"] == whole["text"]


def test_penalties_change_a_greedy_loop_and_keep_their_seed(server):
    greedy = {"prompt": "fn", "max_new_tokens": 40, "do_sample": False}
    _, _, looped = server.post("/generate", greedy)
    _, _, penalized = server.post("/generate", {**greedy, "repetition_penalty": 1.5, "presence_penalty": 1.0})
    def distinct_tokens(text):
        return len(set(server.post("/tokenize", {"text": text})[2]["ids"]))
    assert distinct_tokens(penalized["text"]) > distinct_tokens(looped["text"])
    sampled = {"prompt": "fn", "max_new_tokens": 20, "seed": 9, "frequency_penalty": 0.5, "min_p": 0.1}
    assert server.post("/generate", sampled)[2] == server.post("/generate", sampled)[2]


def test_openapi_is_served(server):
    status, _, spec = server.request("GET", "/openapi.json")
    assert status == 200 and spec == json.loads(OPENAPI_FILE.read_text())


# -------------------------------------------------------------- bad requests

G = "/generate"
BAD_REQUESTS = [
    # (method, path, body (dict) or raw bytes, status, words the message must contain)
    ("POST", G, b"{not json", 400, "not valid JSON"),
    ("POST", G, b"[1, 2]", 400, "must be a JSON object, got array"),
    ("POST", G, b'"text"', 400, "must be a JSON object, got string"),
    ("POST", G, b"\xff\xfe{}", 400, "not UTF-8"),
    ("POST", G, b"", 400, "not valid JSON"),
    ("POST", G, {}, 400, "prompt is required"),
    ("POST", G, {"prompt": 5}, 400, "prompt must be a string, got integer"),
    ("POST", G, {"prompt": None}, 400, "prompt must be a string, got null"),
    ("POST", G, {"prompt": "a", "max_new_tokens": 0}, 400, "max_new_tokens must be between 1 and 200, got 0"),
    ("POST", G, {"prompt": "a", "max_new_tokens": -3}, 400, "between 1 and 200"),
    ("POST", G, {"prompt": "a", "max_new_tokens": 201}, 400, "between 1 and 200, got 201"),
    ("POST", G, {"prompt": "a", "max_new_tokens": 1.5}, 400, "max_new_tokens must be an integer, got number"),
    ("POST", G, {"prompt": "a", "max_new_tokens": "10"}, 400, "must be an integer, got string"),
    ("POST", G, {"prompt": "a", "max_new_tokens": True}, 400, "must be an integer, got boolean"),
    ("POST", G, {"prompt": "a", "temperature": -1}, 400, "temperature must be >= 0, got -1"),
    ("POST", G, {"prompt": "a", "temperature": "hot"}, 400, "temperature must be a number, got string"),
    ("POST", G, b'{"prompt": "a", "temperature": NaN}', 400, "temperature must be a finite number"),
    ("POST", G, {"prompt": "a", "top_k": -1}, 400, "top_k must be >= 0, got -1"),
    ("POST", G, {"prompt": "a", "top_k": 2.5}, 400, "top_k must be an integer"),
    ("POST", G, {"prompt": "a", "top_p": 0}, 400, "top_p must be > 0 and <= 1, got 0"),
    ("POST", G, {"prompt": "a", "top_p": 1.5}, 400, "top_p must be <= 1, got 1.5"),
    ("POST", G, {"prompt": "a", "top_p": -0.1}, 400, "top_p must be > 0"),
    ("POST", G, {"prompt": "a", "stop_sequences": "x"}, 400, "stop_sequences must be an array of strings, got string"),
    ("POST", G, {"prompt": "a", "stop_sequences": [""]}, 400, "stop_sequences[0] must be 1 to 64 characters, got 0"),
    ("POST", G, {"prompt": "a", "stop_sequences": ["a", 1]}, 400, "stop_sequences[1] must be a string"),
    ("POST", G, {"prompt": "a", "stop_sequences": ["s"] * 9}, 400, "at most 8 strings, got 9"),
    ("POST", G, {"prompt": "a", "stop_sequences": ["x" * 65]}, 400, "1 to 64 characters, got 65"),
    ("POST", G, {"prompt": "a", "do_sample": "yes"}, 400, "do_sample must be true or false, got string"),
    ("POST", G, {"prompt": "a", "seed": -1}, 400, "seed must be between 0 and"),
    ("POST", G, {"prompt": "a", "seed": "abc"}, 400, "seed must be an integer"),
    ("POST", G, {"prompt": "a", "max_tokens": 5}, 400, "unknown field 'max_tokens'"),
    ("POST", G, {"prompt": "a", "logprobs": 21}, 400, "logprobs must be between 0 and 20, got 21"),
    ("POST", G, {"prompt": "a", "logprobs": True}, 400, "logprobs must be an integer, got boolean"),
    ("POST", G, {"prompt": "a", "min_p": 1.5}, 400, "min_p must be between 0 and 1, got 1.5"),
    ("POST", G, {"prompt": "a", "repetition_penalty": 0}, 400, "repetition_penalty must be > 0 and <= 10, got 0"),
    ("POST", G, {"prompt": "a", "frequency_penalty": 2.5}, 400, "frequency_penalty must be between -2 and 2"),
    ("POST", G, {"prompt": "a", "presence_penalty": "x"}, 400, "presence_penalty must be a number, got string"),
    ("POST", G, {"prompt": "fn x" * 100}, 400, "the context holds 64, so a prompt may have at most 63"),
    ("POST", G, {"prompt": "a", "model": "gpt-5"}, 404,
     "model 'gpt-5' is not loaded; this server serves 'tiny-random'"),
    ("POST", G, {"prompt": "a" * 20_000}, 413, "the limit is 16384"),
    ("GET", G, None, 405, "GET is not allowed on /generate; allowed: POST"),
    ("POST", "/health", {}, 405, "allowed: GET"),
    ("GET", "/nope", None, 404, "no such endpoint: GET /nope"),
    ("DELETE", "/tokenize", None, 405, "not allowed"),
    ("POST", "/tokenize", {"text": 3}, 400, "text must be a string, got integer"),
    ("POST", "/tokenize", {}, 400, "text is required"),
    ("POST", "/tokenize", {"text": "a", "extra": 1}, 400, "unknown field 'extra'"),
    ("POST", "/detokenize", {"ids": [1, 99999]}, 400, "ids[1] = 99999 is not in the vocabulary (ids are 0..4095)"),
    ("POST", "/detokenize", {"ids": [-1]}, 400, "ids[0] = -1 is not in the vocabulary"),
    ("POST", "/detokenize", {"ids": "1,2"}, 400, "ids must be an array of integers, got string"),
    ("POST", "/detokenize", {"ids": [True]}, 400, "ids[0] must be an integer, got boolean"),
    ("POST", "/detokenize", {}, 400, "ids is required"),
    ("POST", "/generate_stream", {"prompt": "a", "temperature": -1}, 400, "temperature must be >= 0"),
    ("POST", "/generate_stream", {"prompt": "a", "model": "other"}, 404, "is not loaded"),
    ("POST", "/generate_stream", b"{", 400, "not valid JSON"),
]


@pytest.mark.parametrize("method, path, body, status, words", BAD_REQUESTS,
                         ids=[f"{i}-{r[3]}" for i, r in enumerate(BAD_REQUESTS)])
def test_bad_request_gets_a_json_error_and_the_server_lives_on(server, method, path, body, status, words):
    raw = body if isinstance(body, bytes) else None
    got_status, headers, got = server.request(method, path, None if raw is not None else body, raw=raw)
    assert got_status == status
    assert headers["Content-Type"].startswith("application/json")
    assert set(got) == {"error", "error_type"} and words in got["error"], got
    assert server.request("GET", "/health")[0] == 200


def test_the_bad_request_table_is_big_enough():
    assert len(BAD_REQUESTS) >= 30


# ---------------------------------------------------------------- under load

def test_sixteen_concurrent_clients_get_the_sequential_answers(server):
    requests = [{"prompt": f"fn f{i}() {{", "max_new_tokens": 12, "do_sample": False} for i in range(16)]
    sequential = [server.post("/generate", r)[2]["text"] for r in requests]
    with ThreadPoolExecutor(16) as pool:
        concurrent = list(pool.map(lambda r: server.post("/generate", r)[2]["text"], requests))
    assert concurrent == sequential


def test_health_and_tokenize_do_not_wait_behind_a_generation(tiny_model):
    slow = WrappedModel(tiny_model, delay=0.05)
    with serving(slow) as (client, _):
        with ThreadPoolExecutor(1) as pool:
            long = pool.submit(client.post, "/generate", {"prompt": "a", "max_new_tokens": 60})
            time.sleep(0.3)
            t0 = time.perf_counter()
            assert client.request("GET", "/health")[0] == 200
            assert client.post("/tokenize", {"text": "abc"})[0] == 200
            assert client.post("/detokenize", {"ids": [1]})[0] == 200
            quick = time.perf_counter() - t0
            assert not long.done()
            assert long.result()[0] == 200
    assert quick < 1.0, f"side endpoints took {quick:.2f}s during a ~3 s generation"


def test_overload_answers_429_at_once(tiny_model):
    """One runs (a batch of one), one waits; a third is refused at once. The
    model is held at a gate until then, so however slow the machine, the
    first request cannot finish before the second arrives."""
    gate = threading.Event()
    gate.set()  # open while the server starts
    held = WrappedModel(tiny_model, gate=gate)
    with serving(held, max_pending=1, engine_options={"max_batch": 1}) as (client, app):
        gate.clear()
        with ThreadPoolExecutor(2) as pool:
            engine, busy = app.config["inference.engine"], []
            for running, waiting in ((1, 0), (1, 1)):  # the second is sent once the first runs, or it would be refused
                busy.append(pool.submit(client.post, "/generate", {"prompt": "a", "max_new_tokens": 30}))
                deadline = time.monotonic() + 10
                while (engine.stats()["running"], engine.stats()["waiting"]) != (running, waiting) \
                        and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert (engine.stats()["running"], engine.stats()["waiting"]) == (running, waiting)
            t0 = time.perf_counter()
            status, headers, body = client.post("/generate", {"prompt": "a"})
            assert time.perf_counter() - t0 < 0.5
            assert status == 429 and headers["Retry-After"] == "1" and body["error_type"] == "overloaded"
            status, _, _ = client.post("/generate_stream", {"prompt": "a"})
            assert status == 429
            gate.set()
            assert [f.result()[0] for f in busy] == [200, 200]
        assert client.post("/generate", {"prompt": "a", "max_new_tokens": 2})[0] == 200


def test_a_burst_fills_the_free_places_before_anyone_is_refused(tiny_model):
    """--max-batch 4, --max-pending 2, one request in a step (held at a gate):
    three free places and two waiting ones take the next five; the sixth is
    refused. A place that the next step fills is no reason to refuse."""
    gate = threading.Event()
    gate.set()  # open while the server starts
    held = WrappedModel(tiny_model, gate=gate)
    with serving(held, max_pending=2, engine_options={"max_batch": 4}) as (client, app):
        engine = app.config["inference.engine"]
        gate.clear()
        with ThreadPoolExecutor(6) as pool:
            taken = [pool.submit(client.post, "/generate", {"prompt": "a", "max_new_tokens": 3})]
            assert wait_for(lambda: engine.stats()["running"] == 1)
            taken += [pool.submit(client.post, "/generate", {"prompt": "a", "max_new_tokens": 3}) for _ in range(5)]
            try:
                assert wait_for(lambda: engine.stats()["waiting"] == 5)
                status, _, body = client.post("/generate", {"prompt": "a"})
            finally:
                gate.set()
            assert [f.result()[0] for f in taken] == [200] * 6
    assert status == 429 and body["error_type"] == "overloaded"
    assert body["error"] == "server is busy: 1 running and 5 waiting for a place (at most 4 + 2); " \
                            "retry shortly"


def test_with_every_place_taken_health_and_a_429_still_find_a_thread(tiny_model):
    """Each generation holds a worker thread while it waits and runs: the
    command line's default --threads leaves more than those, so that /health
    and the answer that refuses one more still get a thread at once."""
    threads = parse_args(["--max-batch", "2", "--max-pending", "2"]).threads
    gate = threading.Event()
    gate.set()
    held = WrappedModel(tiny_model, gate=gate)
    with serving(held, max_pending=2, engine_options={"max_batch": 2}, threads=threads) as (client, app):
        engine = app.config["inference.engine"]
        gate.clear()
        with ThreadPoolExecutor(4) as pool:
            streams = [pool.submit(client.stream, {"prompt": "a", "max_new_tokens": 3}) for _ in range(4)]
            try:
                assert wait_for(lambda: engine.stats()["running"] + engine.stats()["waiting"] == 4)  # 2 + 2
                answers = [answer(client.port, "GET", "/health"),
                           answer(client.port, "POST", "/generate", {"prompt": "a"})]
            finally:
                gate.set()
            assert all(f.result()[-1] == ("done", "[DONE]") for f in streams)
    assert answers == [200, 429]


def answer(port, method, path, body=None, timeout=5) -> int:  # the status, or TimeoutError after `timeout` s
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request(method, path, json.dumps(body) if body else None, {"Content-Type": "application/json"})
    return conn.getresponse().status


def post_raw(port, path, body) -> socket.socket:
    """A POST sent on a bare socket, left to the caller to read or to close:
    a client that can hang up at any moment."""
    sock = socket.create_connection(("127.0.0.1", port))
    data = json.dumps(body).encode()
    sock.sendall(b"POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (path.encode(), len(data), data))
    return sock


@pytest.mark.parametrize("path", ["/generate_stream", "/generate"])
def test_a_client_that_disconnects_stops_its_generation(tiny_model, path):
    """Streaming, the next write fails; not streaming, the route notices the
    closed socket while it waits. Either way the engine stops within a few steps."""
    slow = WrappedModel(tiny_model, delay=0.05)
    with serving(slow) as (client, app):
        sock = post_raw(client.port, path, {"prompt": "a", "max_new_tokens": 150})
        if path == "/generate_stream":
            received = b""
            while received.count(b"data:") < 3:
                received += sock.recv(4096)
        else:  # wait for the steps themselves: a loaded machine may take longer than 3 x 0.05 s
            deadline = time.monotonic() + 10
            while slow.steps < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
        assert slow.steps >= 3
        sock.close()
        steps_at_close = slow.steps
        time.sleep(1.0)  # 20 more steps' worth of time
        assert slow.steps - steps_at_close <= 3
        assert wait_for_idle(app.config["inference.engine"])
        assert client.post("/generate", {"prompt": "a", "max_new_tokens": 2})[0] == 200


@pytest.mark.parametrize("path, body", [("/generate_stream", {"prompt": "a"}),
                                        ("/v1/completions", {"model": "tiny-random", "prompt": "a", "stream": True})])
def test_a_stream_whose_client_leaves_while_it_waits_gives_its_place_back(tiny_model, path, body):
    """A stream writes nothing until its first token, so a write cannot tell
    that its client left while it waited for a place in the batch: it asks the
    socket, as a non-streaming route does. The place in the waiting line is
    free again long before the running request ends."""
    slow = WrappedModel(tiny_model, delay=0.05)
    with serving(slow, engine_options={"max_batch": 1}) as (client, app):
        engine = app.config["inference.engine"]
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(client.post, "/generate", {"prompt": "a", "max_new_tokens": 100})  # ~5 s
            assert wait_for(lambda: engine.stats()["running"] == 1)
            sock = post_raw(client.port, path, body)
            assert wait_for(lambda: engine.stats()["waiting"] == 1)
            sock.close()
            assert wait_for(lambda: engine.stats()["waiting"] == 0, timeout=1.0)
            assert not running.done()
            assert running.result()[0] == 200


def test_a_non_streaming_client_that_disconnects_is_noticed_while_tokens_keep_coming(shipped_model_dir):
    """Tokens every few ms, faster than the route's check every 50 ms (CLIENT_POLL_S): the route still
    asks every 50 ms, so the request stops within a few checks, not after its 200 tokens (the
    shipped model, greedy: it writes all 200 when nobody leaves)."""
    from inference import load_model
    quick = WrappedModel(load_model(shipped_model_dir), delay=0.005)
    with serving(quick) as (client, app):
        sock = socket.create_connection(("127.0.0.1", client.port))
        body = json.dumps({"prompt": "fn main() {", "max_new_tokens": 200, "temperature": 0}).encode()
        sock.sendall(b"POST /generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        deadline = time.monotonic() + 10
        while quick.steps < 10 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert quick.steps >= 10
        sock.close()
        assert wait_for_idle(app.config["inference.engine"])
        assert quick.steps < 100


def wait_for_idle(engine, timeout=5.0) -> bool:
    """The engine frees a cancelled or finished request's place at its next step."""
    return wait_for(lambda: engine.stats() == {"running": 0, "waiting": 0, "kv_cache_usage": 0.0}, timeout)


def wait_for(condition, timeout=10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_under_preemption_and_disconnects_every_answer_is_the_one_alone(tiny_model):
    """Twelve clients at once, four requests each, into a KV cache of one
    context, so that running requests are preempted; a quarter of them hang up
    midway. Every answer that completes is the one its request gets alone,
    and once all is over no request and no block is left held."""
    rnd = random.Random(0)
    jobs = [({"prompt": f"fn f{i}(x: u32) -> u32 {{" * rnd.randint(1, 3), "max_new_tokens": rnd.randint(5, 40),
              **({"do_sample": False} if rnd.random() < 0.5 else {"temperature": 1.0, "seed": i})},
             rnd.choice(["/generate", "/generate_stream"]), rnd.random() < 0.25) for i in range(48)]

    def run(job):  # -> the answer's text, or None where the client hung up
        body, path, leaves = job
        if leaves:
            sock = post_raw(client.port, path, body)
            time.sleep(rnd.random() * 0.05)
            sock.close()
            return None
        if path == "/generate":
            status, _, answer = client.post(path, body)
            assert status == 200, answer
            return answer["text"]
        return "".join(json.loads(data)["token"] for name, data in client.stream(body) if name == "message")

    small_cache = {"max_batch": 4, "kv_blocks": 8, "block_size": 8}
    with serving(tiny_model, max_pending=len(jobs), engine_options=small_cache) as (client, app):  # no 429 here
        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(run, jobs))
        engine = app.config["inference.engine"]
        assert wait_for_idle(engine)
        assert engine.totals()["preemptions"] > 0, "the KV cache was not small enough to preempt"
        alone = [client.post("/generate", body)[2]["text"] if answer is not None else None
                 for (body, _, _), answer in zip(jobs, answers)]
    assert sum(a is not None for a in answers) > 24 and answers == alone


def test_clients_that_come_straight_back_are_not_refused(tiny_model):
    """16 streaming clients, each sending its next request the moment its stream
    ends, with room for 16 waiting: a finished request's place is free as soon
    as its last token is out, so none is ever refused (before the engine, 13 of
    192 got 429: the place was given back only after the stream closed)."""
    with serving(WrappedModel(tiny_model, delay=0.002), max_pending=16) as (client, _):
        def one_client(i):
            statuses = []
            for j in range(12):
                conn = http.client.HTTPConnection("127.0.0.1", client.port, timeout=30)
                conn.request("POST", "/generate_stream", json.dumps({"prompt": "fn", "max_new_tokens": 8, "seed": j}),
                             {"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                statuses.append(resp.status)
                conn.close()
            return statuses
        with ThreadPoolExecutor(16) as pool:
            statuses = [s for client_statuses in pool.map(one_client, range(16)) for s in client_statuses]
    assert statuses == [200] * 192


# ------------------------------------------------------------ backend errors

def test_a_backend_failure_is_a_500_and_the_server_keeps_serving(tiny_model):
    failing = WrappedModel(tiny_model, fail_at=3)
    with serving(failing) as (client, app):
        status, _, body = client.post("/generate", {"prompt": "a", "max_new_tokens": 10})
        assert status == 500 and body["error_type"] == "backend" and "illegal memory access" in body["error"]
        events = client.stream({"prompt": "a", "max_new_tokens": 10})
        assert [name for name, _ in events] == ["error"]  # the first step fails too (fail_at already passed)
        assert json.loads(events[0][1])["error_type"] == "backend"
        failing.fail_at, failing.steps = 3, 0
        events = client.stream({"prompt": "a", "max_new_tokens": 10})
        assert [name for name, _ in events] == ["message", "message", "error"]
        assert client.request("GET", "/health")[0] == 200
        failing.fail_at = None
        assert client.post("/generate", {"prompt": "a", "max_new_tokens": 3})[0] == 200
        assert wait_for_idle(app.config["inference.engine"])


# ------------------------------------------------------------------- OpenAPI

def test_every_route_and_error_code_is_in_the_openapi_description(server, tiny_model):
    spec = json.loads(OPENAPI_FILE.read_text())
    app = create_app(tiny_model)
    routes = {(r.rule, r.method.lower()) for r in app.routes}
    described = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    assert routes == described
    for method, path, _, status, _ in BAD_REQUESTS:
        if path in spec["paths"] and status != 405:
            assert str(status) in spec["paths"][path][method.lower()]["responses"], (path, status)
        elif status == 405:
            assert all("405" in op["responses"] for op in spec["paths"][path].values())
    for path in ("/generate", "/generate_stream"):
        assert {"429", "500"} <= set(spec["paths"][path]["post"]["responses"])
    schema = spec["components"]["schemas"]["GenerateRequest"]["properties"]
    from inference.validation import GENERATE_FIELDS
    assert set(schema) == GENERATE_FIELDS
    assert {k: v.get("default") for k, v in schema.items() if "default" in v} == {
        "max_new_tokens": 128, "temperature": 0.7, "top_k": 40, "top_p": 0.9, "stop_sequences": [], "do_sample": True,
        "min_p": 0, "repetition_penalty": 1, "frequency_penalty": 0, "presence_penalty": 0}


# -------------------------------------------------------------- command line

def without_simulator():
    """The server as a user starts it: Numba's CUDA simulator is a test tool, not a GPU."""
    return {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}


def run_server(*args, timeout=20):
    return subprocess.run([sys.executable, "-m", "inference.server", *args], capture_output=True, text=True,
                          timeout=timeout, env=without_simulator())


def server_process(*args, env=None):  # the server started as a user starts it, its log on a pipe
    return subprocess.Popen([sys.executable, "-m", "inference.server", *args], stderr=subprocess.PIPE, text=True,
                            env={**without_simulator(), **(env or {})})


def read_log_until(proc, words: str) -> str:  # the server's log up to the line with these words -> that line
    while words not in (line := proc.stderr.readline()):
        assert line, f"the server ended before it logged {words!r}"
    return line


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_help():
    result = run_server("--help")
    assert result.returncode == 0 and "--device {cpu,cpu-numba,cuda,auto}" in result.stdout
    assert "(default: None)" not in result.stdout, "a flag without a default should say what it falls back to"


def test_the_api_key_comes_from_the_environment_and_help_does_not_show_it(monkeypatch, capsys):
    monkeypatch.setenv("INFERENCE_API_KEY", "s3cret-from-env")
    assert parse_args([]).api_key == "s3cret-from-env"
    assert parse_args(["--api-key", "given"]).api_key == "given"
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    help_text = capsys.readouterr().out
    assert "INFERENCE_API_KEY" in help_text and "s3cret" not in help_text


def test_a_missing_model_stops_start_up(tmp_path):
    result = run_server("--model", str(tmp_path / "nope"), "--device", "cpu")
    assert result.returncode == 1 and "model folder not found" in result.stderr


def test_a_corrupt_model_stops_start_up(tiny_model_dir, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in Path(tiny_model_dir).iterdir():
        (broken / f.name).write_bytes(f.read_bytes())
    (broken / "model.safetensors").write_bytes(b"\0" * 100)
    result = run_server("--model", str(broken), "--device", "cpu")
    assert result.returncode == 1 and "not a readable safetensors file" in result.stderr


def test_device_cuda_without_a_gpu_stops_start_up(tiny_model_dir):
    from inference.backends import real_gpu_available
    if real_gpu_available():
        pytest.skip("this machine has a GPU")
    result = run_server("--model", str(tiny_model_dir), "--device", "cuda")
    # no GPU, or (where the CUDA libraries are missing) numba-cuda cannot even load
    assert result.returncode == 1 and "--device cuda was asked for, but " in result.stderr


@pytest.mark.parametrize("args, words", [
    (["--block-size", "100000"], "block_size (100000) must be at most the model's context"),
    (["--kv-blocks", str(10**12)], "its KV cache does not fit in memory (--kv-blocks 1000000000000, --block-size 16)"
                                   ": a KV cache of "),  # petabytes: more than any machine has
])
def test_a_kv_cache_that_cannot_be_stops_start_up(tiny_model_dir, args, words):
    result = run_server("--model", str(tiny_model_dir), "--device", "cpu", "--port", "0", *args)
    assert result.returncode == 1 and words in result.stderr and "Traceback" not in result.stderr, result.stderr


def run_server_in(cgroup: Path, *args) -> subprocess.CompletedProcess:  # the shell enters it, then becomes the server
    enter_and_start = f'echo $$ > {cgroup / "cgroup.procs"} && exec "$@"'
    return subprocess.run(["sh", "-c", enter_and_start, "sh", sys.executable, "-m", "inference.server", *args],
                          capture_output=True, text=True, timeout=60,
                          env={**without_simulator(), "OPENBLAS_NUM_THREADS": "1"})


def test_a_limit_on_threads_stops_start_up_with_a_clear_message(tiny_model_dir, limited_cgroup):
    """A container's pids limit below the server's --threads: Cheroot cannot start them all. The
    workers it started must stop too: they are not daemons, and kept the process alive, silent."""
    cgroup = limited_cgroup("pids", {2: {"pids.max": "16"}, 1: {"pids.max": "16"}})
    result = run_server_in(cgroup, "--model", str(tiny_model_dir), "--device", "cpu", "--port", "0", "--threads", "40")
    assert result.returncode == 1, result.stderr
    assert "cannot start the server's 40 worker threads (--threads): can't start new thread" in result.stderr


def test_a_kv_cache_beyond_a_memory_limit_stops_start_up_with_a_clear_message(tiny_model_dir, limited_cgroup):
    """A container's memory limit below the KV cache: Linux allows the pool's allocation (it
    overcommits), and the OOM killer ended the process without a word as the pool was written."""
    from inference.checkpoint import read_config
    from inference.reference.paged import KVPool
    limit = 512 * 2 ** 20
    cgroup = limited_cgroup("memory", {2: {"memory.max": str(limit)}, 1: {"memory.limit_in_bytes": str(limit)}})
    blocks = 2 * limit // KVPool.nbytes(read_config(tiny_model_dir), 1, 16)  # a pool of twice the limit
    result = run_server_in(cgroup, "--model", str(tiny_model_dir), "--device", "cpu", "--port", "0",
                           "--kv-blocks", str(blocks))
    assert result.returncode == 1, result.stderr
    assert (f"its KV cache does not fit in memory (--kv-blocks {blocks}, --block-size 16): a KV cache of 1.00 GiB "
            "is more than the 0.") in result.stderr, result.stderr  # what the limit leaves after the model


def test_warm_up_runs_a_prompt_a_sampled_and_greedy_tokens(tiny_model):
    from inference.engine import Engine
    counted = WrappedModel(tiny_model)
    engine = Engine(counted)
    try:
        assert engine.warm_up() > 0 and counted.steps == 4  # the prompt + a sampled token; the prompt + 3 greedy
    finally:
        engine.stop()


def test_an_unexpected_error_while_loading_ends_the_process(monkeypatch):
    """Not a hang: Cheroot's worker threads, not daemons, kept the process
    alive after main() raised, its /live answering 200 for good."""
    from inference import server

    def load_model(path, device, **options):
        raise RuntimeError("a fault nobody foresaw")
    monkeypatch.setattr(server, "load_model", load_model)
    before = set(threading.enumerate())
    with pytest.raises(RuntimeError, match="a fault nobody foresaw"):
        server.main(["--port", "0"])
    deadline = time.monotonic() + 5
    while (left := [t for t in threading.enumerate() if t not in before and not t.daemon]) and \
            time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, [t.name for t in left]


def test_a_model_that_fails_its_warm_up_stops_start_up(tiny_model, monkeypatch, capsys):
    from inference import server
    failing = WrappedModel(tiny_model, fail_at=2)  # the first step works, the second fails
    monkeypatch.setattr(server, "load_model", lambda path, device, **options: failing)
    assert server.main(["--port", "0"]) == 1
    assert failing.steps == 2
    assert "failed its warm-up run on cpu: generation failed: RuntimeError: simulated CUDA error" in \
        capsys.readouterr().err


@pytest.mark.parametrize("flags, cuda_graphs", [((), True), (("--cuda-graphs", "off"), False)])
def test_cuda_graphs_on_or_off_reaches_the_model(monkeypatch, flags, cuda_graphs):
    from inference import server
    asked = []

    def load_model(path, device, **options):
        asked.append((device, options))
        raise ValueError("enough: the model was asked for")
    monkeypatch.setattr(server, "load_model", load_model)
    assert server.main(["--port", "0", "--device", "cuda", *flags]) == 1
    assert asked == [("cuda", {"cuda_graphs": cuda_graphs})]


def signal_burst(proc, signum, n=3000):  # as fast as they can be sent: some land inside the handling of others
    """By the shell's built-in kill, a few microseconds apart (a loop in Python, traced by coverage, is
    too slow to land one inside another's handling); it stops when the process has gone."""
    subprocess.run(["sh", "-c", f'i=0; while [ $i -lt {n} ] && kill -{signum.value} {proc.pid} 2>/dev/null; '
                                f'do i=$((i + 1)); done'], timeout=30)


def test_ctrl_c_while_the_model_loads_stops_the_server_at_once(tiny_model_dir, tmp_path):
    """cpu-numba's first start compiles its step for seconds (here: an empty
    Numba cache); Ctrl-C then did nothing until the model was loaded. Pressed
    again and again, it must not interrupt the stopping (which hung the process
    or ended it by a traceback, in 4 tries of 5)."""
    proc = server_process("--model", str(tiny_model_dir), "--port", "0", "--device", "cpu-numba",
                          env={"NUMBA_CACHE_DIR": str(tmp_path)})
    try:
        assert "loading" in proc.stderr.readline()
        signal_burst(proc, signal.SIGINT)
        assert proc.wait(timeout=10) == 130
        assert proc.stderr.read().strip() == "interrupted while loading"
    finally:
        proc.kill()


def test_a_burst_of_signals_while_serving_drains_and_exits(tiny_model_dir):
    """`timeout` signals the server and its process group (two SIGTERMs); a person presses Ctrl-C
    twice. A handler that set a threading.Event could run again inside itself, holding the Event's
    lock, and wait for it for good (3 tries of 6 hung)."""
    for _ in range(3):
        proc = server_process("--model", str(tiny_model_dir), "--port", "0", "--device", "cpu")
        try:
            read_log_until(proc, "serving")
            signal_burst(proc, signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
        finally:
            proc.kill()


def test_the_address_it_logs_is_one_a_client_can_use_on_ipv6(tiny_model_dir):
    """`--host ::1`: the logged address must be a URL (the IPv6 address in brackets), followed here as is."""
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError as e:
        pytest.skip(f"no IPv6 loopback here: {e}")
    proc = server_process("--model", str(tiny_model_dir), "--host", "::1", "--port", "0", "--device", "cpu")
    try:
        assert "loading" in proc.stderr.readline()
        logged = re.search(r"serving tiny-random on (\S+) ", proc.stderr.readline()).group(1)
        address = urllib.parse.urlsplit(logged)
        conn = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
        conn.request("GET", "/health")
        assert address.hostname == "::1" and conn.getresponse().status == 200
    finally:
        proc.kill()


def test_the_thread_that_serves_a_request_gives_way_to_the_engine_and_no_other(tiny_model_dir):
    """Linux: after one request, one thread of the server's runs as a batch thread (http.GiveWay):
    the Cheroot worker that served it. The engine's threads, and every other, keep the usual policy."""
    if not hasattr(os, "SCHED_BATCH"):
        pytest.skip("no SCHED_BATCH here (not Linux)")
    port = free_port()
    proc = server_process("--model", str(tiny_model_dir), "--port", str(port), "--device", "cpu-numba")
    try:
        read_log_until(proc, "serving")
        status, _, _ = Client(port).post("/generate", {"prompt": "fn main() {", "max_new_tokens": 16})
        assert status == 200
        policies = [os.sched_getscheduler(int(tid)) for tid in os.listdir(f"/proc/{proc.pid}/task")]
        assert policies.count(os.SCHED_BATCH) == 1 and policies.count(os.SCHED_OTHER) == len(policies) - 1
    finally:
        proc.kill()


def test_a_second_ctrl_c_ends_the_running_generations_at_once():
    """The first Ctrl-C drains: the running generations may finish (up to --drain-timeout). The
    second stops waiting: their streams end with an error event, and the server exits."""
    port = free_port()
    proc = server_process("--port", str(port), "--device", "cpu")  # the shipped model
    try:
        read_log_until(proc, "serving")
        with ThreadPoolExecutor(16) as pool:  # 16 x 480 tokens: seconds of work on any CPU
            streams = [pool.submit(Client(port).stream, {"prompt": "fn main() {", "max_new_tokens": 480, "seed": i})
                       for i in range(16)]
            time.sleep(1.0)
            proc.send_signal(signal.SIGINT)
            read_log_until(proc, "Ctrl-C again ends them at once")  # past the access log
            time.sleep(0.5)
            assert proc.poll() is None  # draining: waiting for the generations
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=10) == 0
            ends = [stream.result(timeout=10)[-1][0] for stream in streams]
        # "done" for the few that met the end of text before; the others were cut: drained, all would be done
        assert set(ends) <= {"done", "error"} and "error" in ends, ends
    finally:
        proc.kill()


@pytest.mark.parametrize("device, serving_on", [("cpu", "cpu"), ("auto", "cpu-numba")])
def test_starts_logs_and_shuts_down_cleanly_on_ctrl_c(tiny_model_dir, device, serving_on):
    port = free_port()
    proc = server_process("--model", str(tiny_model_dir), "--port", str(port), "--device", device)
    try:
        line = proc.stderr.readline()
        assert f"loading {tiny_model_dir} on --device {device}; http://127.0.0.1:{port} answers 503 until" in line, line
        line = proc.stderr.readline()
        assert f"serving tiny-random on http://127.0.0.1:{port} (device {serving_on}, load " in line, line
        status, _, _ = Client(port).post("/generate", {"prompt": "a", "max_new_tokens": 3})
        assert status == 200
        access = proc.stderr.readline()
        assert "POST /generate 200" in access and "tokens=3" in access, access
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        assert "shut down" in proc.stderr.read()
    finally:
        proc.kill()
