"""scripts/bench_batching.py's streaming client counts the server's events
without parsing them: checked against the SSE parser of the server's tests
on the same stream, read whole and cut at every place between two reads."""

import http.client
import importlib.util
import json
from pathlib import Path

import pytest
from test_server import parse_sse

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "bench_batching.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_batching", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def server(bench, tiny_model_dir):
    server = bench.Server(tiny_model_dir, max_batch=4)
    yield server
    server.stop()


def event_stream(port, prompt, new_tokens, seed):  # the body of /generate_stream, whole
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", "/generate_stream", json.dumps({"prompt": prompt, "max_new_tokens": new_tokens,
                                                         "seed": seed}), {"Content-Type": "application/json"})
    body = conn.getresponse().read()
    conn.close()
    return body


def events_parsed(body):  # the stream's token events (a JSON object each), before its "done" event
    *tokens, done = parse_sse(body.decode())
    assert done == ("done", "[DONE]") and all(name == "message" and data.startswith("{") for name, data in tokens)
    return len(tokens)


def test_the_client_counts_every_event(bench, server):
    for seed, new_tokens in [(1, 1), (2, 7), (3, 20)]:
        tokens, first, total = bench.stream(server.port, "fn main() {", new_tokens, seed)
        expected = events_parsed(event_stream(server.port, "fn main() {", new_tokens, seed))
        assert tokens == expected > 0 and 0 < first <= total


def test_one_thread_reads_many_streams_and_counts_each(bench, server):
    prompts, lengths = ["fn main() {", "let x = ", "struct A"], [1, 9, 20]
    expected = [events_parsed(event_stream(server.port, prompt, 20, seed)) for seed, prompt in enumerate(prompts)]
    got = bench.streams(server.port, prompts, 20, range(len(prompts)))
    assert [tokens for tokens, _, _ in got] == expected
    assert all(0 < first <= total for _, first, total in got)
    one_each = [bench.streams(server.port, ["fn"], n, [5])[0][0] for n in lengths]
    assert one_each == [events_parsed(event_stream(server.port, "fn", n, 5)) for n in lengths]


def test_events_cut_between_reads_count_once(bench, server):
    body = event_stream(server.port, "let x = ", 5, 4)
    expected = events_parsed(body)
    assert expected > 1
    for cut in range(1, len(body)):
        assert list(bench.events_so_far([body[:cut], body[cut:]]))[-1] == expected, cut
    assert list(bench.events_so_far(body[i:i + 1] for i in range(len(body))))[-1] == expected


def test_a_devices_entry_may_carry_options_of_its_own(bench, tiny_model_dir):
    """--devices "cuda,cuda --cuda-graphs off": here an API key, which the
    server started for that entry asks for."""
    server = bench.server_for(tiny_model_dir, 4, "cpu --api-key sekret")
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        conn.request("POST", "/tokenize", body=json.dumps({"text": "fn"}), headers={"Content-Type": "application/json"})
        assert conn.getresponse().status == 401
    finally:
        server.stop()
