"""What a replica tells a load balancer and a person: Prometheus metrics.

    GET /metrics  ->  the Prometheus text format, written by prometheus_client

The names follow vLLM's, with our own prefix, because the Gateway API
Inference Extension's model-server protocol (and the endpoint pickers built
on it, such as llm-d's) looks a replica's load up as a queue gauge, a
running gauge and a KV-cache-usage gauge, named like vLLM's by default:

    TotalQueuedRequests   inference:num_requests_waiting   (vllm:num_requests_waiting)
    TotalRunningRequests  inference:num_requests_running   (vllm:num_requests_running)
    KVCacheUtilization    inference:kv_cache_usage_perc    (vllm:kv_cache_usage_perc, 0..1)

docs/deploy.md has the mapping a picker is configured with. The gauges are
read from the engine when Prometheus scrapes; counters and histograms are
updated as requests finish, and after each of the engine's steps.
"""

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
PER_TOKEN_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
STEP_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
TOTALS = {  # Engine.totals() keys -> counter (exposed with _total) and help; vLLM's names, our prefix
    "preemptions": ("inference:num_preemptions", "Running requests preempted for want of KV blocks (recomputed "
                    "later)"),
    "prefix_cache_queries": ("inference:prefix_cache_queries", "Positions looked up in the prefix cache when a "
                             "request is admitted"),
    "prefix_cache_hits": ("inference:prefix_cache_hits", "Of those, positions found there (their prefill skipped)"),
}


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, engine=None):
        self.registry = CollectorRegistry()  # our own, not the process-wide default: one per app
        r = self.registry
        self.waiting = Gauge("inference:num_requests_waiting", "Requests waiting for a place in the batch",
                             registry=r)
        self.running = Gauge("inference:num_requests_running", "Requests in the running batch", registry=r)
        self.kv_usage = Gauge("inference:kv_cache_usage_perc", "Fraction of the KV cache's blocks in use (0..1)",
                              registry=r)
        self.prompt_tokens = Counter("inference:prompt_tokens", "Prompt tokens of finished requests", registry=r)
        self.generation_tokens = Counter("inference:generation_tokens", "Tokens generated", registry=r)
        self.ttft = Histogram("inference:time_to_first_token_seconds", "From submission to the first token",
                              buckets=LATENCY_BUCKETS, registry=r)
        self.tpot = Histogram("inference:time_per_output_token_seconds", "Between a request's tokens, on average",
                              buckets=PER_TOKEN_BUCKETS, registry=r)
        self.e2e = Histogram("inference:e2e_request_latency_seconds", "From submission to the last token",
                             buckets=LATENCY_BUCKETS, registry=r)
        self.step_seconds = Histogram("inference:engine_step_seconds", "One backend step over the running batch",
                                      buckets=STEP_BUCKETS, registry=r)
        self.step_sequences = Histogram("inference:engine_step_sequences", "Sequences in a step (decodes and prompt "
                                        "chunks)", buckets=BATCH_BUCKETS, registry=r)
        self.http_requests = Counter("inference:http_requests", "HTTP responses by route and status",
                                     ["route", "status"], registry=r)
        self.rejected = Counter("inference:requests_rejected_overloaded", "Generations refused with a 429",
                                registry=r)
        if engine is not None:
            self.watch(engine)

    def watch(self, engine) -> None:
        """The gauges read the engine when Prometheus scrapes."""
        self.waiting.set_function(lambda: engine.stats()["waiting"])
        self.running.set_function(lambda: engine.stats()["running"])
        self.kv_usage.set_function(lambda: engine.stats()["kv_cache_usage"])
        engine.on_finish = self.request_finished
        engine.on_step = self.step_done
        self.registry.register(EngineTotals(engine))

    def step_done(self, seconds: float, sequences: int) -> None:
        """Called by the engine after each step. The steps' seconds against the
        wall clock's say how much of a replica's time its model computes, and
        how much goes between steps (scheduling, handing out tokens)."""
        self.step_seconds.observe(seconds)
        self.step_sequences.observe(sequences)

    def request_finished(self, request, finished_at: float) -> None:
        """Called by the engine when a request's last token is out."""
        generated = len(request.tokens) - request.prompt_length
        self.prompt_tokens.inc(request.prompt_length)
        self.generation_tokens.inc(generated)
        if request.first_token_at is not None:
            self.ttft.observe(request.first_token_at - request.submitted)
            if generated > 1:
                self.tpot.observe((finished_at - request.first_token_at) / (generated - 1))
        self.e2e.observe(finished_at - request.submitted)

    def response(self, route: str, status: str) -> None:
        self.http_requests.labels(route, status).inc()
        if status == "429":
            self.rejected.inc()

    def text(self) -> bytes:
        return generate_latest(self.registry)


class EngineTotals:
    """The counters the engine keeps itself (Engine.totals), read when
    Prometheus scrapes, as the gauges are: a prometheus_client collector."""

    def __init__(self, engine):
        self.engine = engine

    def collect(self):
        totals = self.engine.totals()
        for key, (name, help_text) in TOTALS.items():
            yield CounterMetricFamily(name, help_text, value=totals[key])
