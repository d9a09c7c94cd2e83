"""What a replica offers a load balancer: metrics, readiness and liveness, a
graceful drain on SIGTERM, and an optional API key."""

import json
import re
import threading
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from inference.server import drain, loading_app, make_server, shut_down
from test_server import Client, WrappedModel, parse_sse, serving

DOCS = Path(__file__).resolve().parent.parent / "docs"


def scrape(client) -> dict:
    """{(sample name, labels as a sorted tuple): value} from GET /metrics."""
    status, headers, text = client.request("GET", "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_metrics_count_what_happened(tiny_model):
    with serving(tiny_model) as (client, _):
        before = scrape(client)
        assert before[("inference:num_requests_waiting", ())] == 0
        assert before[("inference:num_requests_running", ())] == 0
        assert before[("inference:kv_cache_usage_perc", ())] == 0
        _, _, body = client.post("/generate", {"prompt": "fn main() {", "max_new_tokens": 5, "do_sample": False})
        client.post("/generate", {"prompt": "fn", "temperature": -1})
        client.request("GET", "/no/such/path")
        time.sleep(0.1)  # the access log line (and its count) is written once the response is out
        after = scrape(client)
    assert after[("inference:generation_tokens_total", ())] == body["generated_tokens"]
    assert after[("inference:prompt_tokens_total", ())] == len(tiny_model.tokenizer.encode("fn main() {"))
    assert after[("inference:time_to_first_token_seconds_count", ())] == 1
    steps = after[("inference:engine_step_seconds_count", ())] - before[("inference:engine_step_seconds_count", ())]
    assert steps == body["generated_tokens"]  # the prompt in one step (its first token), then one step a token
    assert after[("inference:engine_step_sequences_sum", ())] - before[("inference:engine_step_sequences_sum", ())] \
        == steps  # each a batch of one
    assert 0 < after[("inference:engine_step_seconds_sum", ())] - before[("inference:engine_step_seconds_sum", ())] \
        < after[("inference:e2e_request_latency_seconds_sum", ())]
    assert after[("inference:e2e_request_latency_seconds_count", ())] == 1
    assert after[("inference:http_requests_total", (("route", "/generate"), ("status", "200")))] == 1
    assert after[("inference:http_requests_total", (("route", "/generate"), ("status", "400")))] == 1
    assert after[("inference:http_requests_total", (("route", "other"), ("status", "404")))] == 1


def test_the_engine_counts_preemptions_and_prefix_cache_hits(tiny_model):
    """A pool of one context (8 blocks of 8) and two requests that each grow
    to 7 blocks: one must be preempted. Then a prompt sent twice: the second
    time its full blocks before the last token are found in the cache."""
    tokenizer = tiny_model.tokenizer
    with serving(tiny_model, engine_options={"max_batch": 2, "kv_blocks": 8, "block_size": 8}) as (client, _):
        long = {"prompt": "fn main() {", "max_new_tokens": 64 - 8 - len(tokenizer.encode("fn main() {")),
                "do_sample": False}
        threads = [threading.Thread(target=client.post, args=("/generate", long)) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        before = scrape(client)
        prompt = "let total: u32 = items.iter().map(|item| item.price).sum();"
        for _ in range(2):
            client.post("/generate", {"prompt": prompt, "max_new_tokens": 1})
        after = scrape(client)
    n = len(tokenizer.encode(prompt))
    assert before[("inference:num_preemptions_total", ())] >= 1
    assert after[("inference:prefix_cache_queries_total", ())] - before[("inference:prefix_cache_queries_total", ())] \
        == 2 * n
    assert after[("inference:prefix_cache_hits_total", ())] - before[("inference:prefix_cache_hits_total", ())] \
        == (n - 1) // 8 * 8  # whole blocks, and never the prompt's last token


def test_every_metric_is_in_the_deploy_guide(tiny_model):
    """docs/deploy.md's table names each series /metrics has, and no other."""
    with serving(tiny_model) as (client, _):
        client.post("/generate", {"prompt": "fn", "max_new_tokens": 1})
        client.post("/generate", {"prompt": "fn", "temperature": -1})
        exposed = {name for name, _ in scrape(client)}
    exposed = {re.sub(r"_(bucket|count|sum)$", "", name) for name in exposed if not name.endswith("_created")}
    documented = set(re.findall(r"`(inference:[a-z0-9_]+)", (DOCS / "deploy.md").read_text()))
    assert exposed == documented


def test_the_gauges_follow_the_engine(tiny_model):
    gate = threading.Event()
    gate.set()  # open while the server starts; then held, so the three requests are all in the engine at once
    held = WrappedModel(tiny_model, gate=gate)
    with serving(held, engine_options={"max_batch": 1}) as (client, app):
        gate.clear()
        threads = [threading.Thread(target=client.post, args=("/generate", {"prompt": "a", "max_new_tokens": 20}))
                   for _ in range(3)]
        for t in threads:
            t.start()
        engine, deadline = app.config["inference.engine"], time.monotonic() + 10
        while (engine.stats()["running"], engine.stats()["waiting"]) != (1, 2) and time.monotonic() < deadline:
            time.sleep(0.01)
        busy = scrape(client)
        gate.set()
        for t in threads:
            t.join()
    assert busy[("inference:num_requests_running", ())] == 1
    assert busy[("inference:num_requests_waiting", ())] == 2
    assert 0 < busy[("inference:kv_cache_usage_perc", ())] < 1


def test_while_loading_the_server_is_alive_but_not_ready():
    server = make_server(loading_app(), "127.0.0.1", 0, threads=4)
    server.prepare()
    threading.Thread(target=server.serve, daemon=True).start()
    try:
        client = Client(server.bind_addr[1])
        status, _, body = client.request("GET", "/health")
        assert status == 503 and body["status"] == "loading"
        assert client.request("GET", "/live")[:3:2] == (200, {"status": "alive"})
        for method, path in [("POST", "/generate"), ("GET", "/"), ("PUT", "/v1/completions"), ("GET", "/no/such")]:
            status, headers, body = client.request(method, path)
            assert status == 503 and body["error_type"] == "unavailable" and headers["Retry-After"] == "1", path
    finally:
        server.stop()


def test_an_api_key_guards_every_route_but_health_live_and_metrics(tiny_model):
    with serving(tiny_model, api_key="s3cret") as (client, _):
        status, headers, body = client.post("/tokenize", {"text": "fn"})
        assert status == 401 and body["error_type"] == "unauthorized" and headers["WWW-Authenticate"] == "Bearer"
        assert client.post("/tokenize", {"text": "fn"}, headers={"Authorization": "Bearer wrong"})[0] == 401
        assert client.post("/tokenize", {"text": "fn"}, headers={"Authorization": "Bearer s3cret"})[0] == 200
        for path in ("/health", "/live", "/metrics"):
            assert client.request("GET", path)[0] == 200, path


@pytest.mark.parametrize("timeout, ends_with", [(30.0, "done"), (0.3, "error")])
def test_a_drain_finishes_running_generations_and_refuses_new_ones(tiny_model, timeout, ends_with):
    """On SIGTERM the server drains: running generations finish (within
    --drain-timeout; after it they are cancelled, a stream ending with an error
    event); meanwhile /health is 503 and new generations are refused with a
    503, so a balancer sends them elsewhere."""
    slow = WrappedModel(tiny_model, delay=0.02)
    with serving(slow) as (client, app):
        response = client.open_stream({"prompt": "a", "max_new_tokens": 60})
        first = response.readline()
        assert first.startswith(b"data:")
        drainer = threading.Thread(target=drain, args=(app, timeout))
        drainer.start()
        time.sleep(0.1)
        status, _, body = client.request("GET", "/health")
        assert status == 503 and body["status"] == "draining"
        status, headers, _ = client.post("/generate", {"prompt": "fn", "max_new_tokens": 2})
        assert status == 503 and headers["Retry-After"] == "1"
        drainer.join()
        shut_down(app.config["inference.server"], app.config["inference.engine"], exit_process=False)
        events = parse_sse((first + response.read()).decode())
    assert events[-1][0] == ends_with
    if ends_with == "error":
        assert "shutting down" in json.loads(events[-1][1])["error"]
