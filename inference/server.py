"""The HTTP API of docs/api.md: Bottle routes on a Cheroot WSGI server.

    python -m inference.server [--host 127.0.0.1] [--port 8000] [--model DIR] [--device auto]

A request's life: the request gate (inference.http) receives the whole
request without holding a thread; Cheroot's thread pool hands the WSGI call
to Bottle; the route reads and checks the JSON body (inference.validation),
encodes the prompt and submits it to the engine (inference.engine), which
runs it beside the others in one batch (or answers 429 when too many wait);
the route then reads the request's tokens as the engine hands them out and
answers JSON, or Server-Sent Events for /generate_stream. /health,
/tokenize and /detokenize never wait for the engine.
"""

import argparse
import functools
import json
import logging
import os
import secrets
import select
import signal
import socket
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import bottle
from cheroot.errors import MaxSizeExceeded

from .backends import DEVICES, DeviceError, load_model
from .checkpoint import CheckpointError
from .engine import Cancelled, Engine, EngineError, Overloaded, ShuttingDown, StepFailed
from .http import ERROR_TYPES, MAX_HEAD_BYTES, Server, wsgi_stack
from .metrics import Metrics
from .openai_api import Completion, completion_request, models_list, openai_error
from .reference.paged import KVPool
from .tokenizer import TokenizerError
from .validation import (ApiError, Limits, detokenize_request, generate_request, invalid, parse_json_object,
                         tokenize_request)

log = logging.getLogger("inference.server")
PACKAGE = Path(__file__).resolve().parent
# The shipped model: in data/ beside the package in a checkout (and an editable install), in the package's own
# data/ where it was installed (setup.py); where neither is, the first, for the error to name
SHIPPED = [folder / "claude-rust-small" for folder in (PACKAGE.parent / "data", PACKAGE / "data")]
DEFAULT_MODEL = next((folder for folder in SHIPPED if folder.is_dir()), SHIPPED[0])
OPENAPI_FILE = PACKAGE / "openapi.json"
PLAYGROUND_FILE = PACKAGE / "playground.html"
# The playground's script and style are inline; it may talk to this server and nothing else.
PLAYGROUND_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
                  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


def sse(data: str, event: str | None = None) -> bytes:
    """One Server-Sent Event: optional `event:` line, one `data:` line, a blank line."""
    return (f"event: {event}\n" if event else "").encode() + f"data: {data}\n\n".encode("utf-8")


def dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)


JSON_TYPES = ("application/json", "application/json; charset=utf-8")


SPARE_THREADS = 8  # worker threads beyond the generations the engine may hold: /health, /metrics, 429s, /tokenize
CLIENT_POLL_S = 0.05  # how often a route that is not writing checks that its client is still there
# A reader's pause after each write: the tokens of a fast stream go a few at a time, at most 50 writes a second,
# about as often as a screen shows a new frame. Each write wakes a thread on the cores the engine's step needs:
# at 8 streams on cpu-numba, 20 ms gave about 3% more tokens/s than 10 ms (and 10 ms 4-8% more than 5 ms).
STREAM_INTERVAL_S = 0.020


def create_app(model, limits: Limits = Limits(), max_pending: int = 16, stream_interval: float = STREAM_INTERVAL_S,
               **engine_options) -> bottle.Bottle:
    """The routes, and the engine that runs every generation (`engine_options`:
    max_batch, kv_blocks, block_size, max_step_tokens; see inference.engine).
    stream_interval: seconds a request's reader waits after handing on tokens
    (Request.bursts); 0: no pause, every token written as soon as it is taken."""
    app = bottle.Bottle(autojson=True)
    engine = Engine(model, max_waiting=max_pending, **engine_options)
    metrics = Metrics(engine)
    tokenizer, n_ctx = model.tokenizer, model.config.n_ctx
    longest_token = max(map(len, tokenizer.encoder))  # bytes
    app.config.update({"inference.engine": engine, "inference.metrics": metrics, "inference.draining": False})

    def draining() -> bool:
        return app.config["inference.draining"]

    def json_body() -> dict:
        """The request's JSON object. Only application/json: a web page can send
        any other type (text/plain, forms, or none) to any origin without asking
        first, so accepting them would let any page run generations here."""
        request = bottle.request
        media_type = request.content_type.split(";")[0].strip().lower()
        if media_type != "application/json":
            raise ApiError(415, f"Content-Type must be application/json, got {request.content_type or 'none'}",
                           "unsupported_media_type")
        if request.content_length > limits.max_body_bytes:
            raise ApiError(413, f"request body is {request.content_length} bytes; the limit is "
                                f"{limits.max_body_bytes}", "too_large")
        try:  # wsgi.input, not Bottle's request.body: Cheroot has already decoded a chunked body
            body = request.environ["wsgi.input"].read(limits.max_body_bytes + 1)
        except (MaxSizeExceeded, IOError) as e:
            if isinstance(e, MaxSizeExceeded) or "Too Large" in str(e):
                raise ApiError(413, f"request body is over the limit of {limits.max_body_bytes} bytes",
                               "too_large", {"Connection": "close"}) from None
            raise
        except ValueError as e:  # a malformed chunked body; the rest of the connection cannot be parsed
            raise ApiError(400, f"malformed chunked request body: {e}", "bad_request",
                           {"Connection": "close"}) from None
        if len(body) > limits.max_body_bytes:
            raise ApiError(413, f"request body is over the limit of {limits.max_body_bytes} bytes", "too_large")
        return parse_json_object(body)

    def prepare_generation():  # -> prompt ids, settings (with the seed that will be used)
        refuse_while_draining()
        req = generate_request(json_body(), limits)
        check_model(req.model)
        return encode_prompt(req.prompt), with_seed(req.settings)

    def refuse_while_draining():
        if draining():  # a balancer sends it to another replica
            raise ApiError(503, "the server is draining: it finishes the generations it has and takes no new ones",
                           "unavailable", {"Retry-After": "1"})

    def check_model(name):
        if name is not None and name != model.name:
            raise ApiError(404, f"model {name!r} is not loaded; this server serves {model.name!r}", "not_found",
                           param="model")

    def encode_prompt(prompt: str) -> list[int]:
        at_least = len(prompt.encode("utf-8")) // longest_token  # tokens, known without encoding
        ids = tokenizer.encode(prompt) if at_least < n_ctx else None
        if ids is None or len(ids) >= n_ctx:
            count = f"{len(ids)} tokens" if ids is not None else f"at least {at_least} tokens"
            raise invalid(f"prompt is {count}; the context holds {n_ctx}, so a prompt may have at most {n_ctx - 1}")
        return ids

    def token_text(i: int) -> str:  # a token on its own; half a UTF-8 character shows as U+FFFD
        return tokenizer.decode([i])

    def logprobs(token) -> dict:
        """A token's log-probability and its likeliest alternatives, for /generate and its stream."""
        return {"logprob": token.logprob,
                "top_logprobs": [{"id": i, "text": token_text(i), "logprob": lp} for i, lp in token.top]}

    def with_seed(settings):  # the seed that will be used: the request's, or one picked here and reported
        return replace(settings, seed=settings.seed if settings.seed is not None else secrets.randbits(63))

    @app.get("/health")
    @api
    def health():
        """Readiness: 200 while new generations are welcome, 503 while draining."""
        if draining():
            bottle.response.status = 503
            return {"status": "draining", "model": model.name, "device": model.device, **engine.stats()}
        return {"status": "ok", "model": model.name, "device": model.device, **engine.stats()}

    @app.get("/live")
    def live():
        """Liveness: 200 whenever the process can answer at all."""
        return {"status": "alive"}

    @app.get("/metrics")
    def prometheus_metrics():
        bottle.response.content_type = metrics.content_type
        return metrics.text()

    @app.get("/")
    def playground():
        """The playground page (inference/playground.html): no build step, nothing fetched from elsewhere."""
        bottle.response.content_type = "text/html; charset=utf-8"
        bottle.response.set_header("Content-Security-Policy", PLAYGROUND_CSP)
        bottle.response.set_header("X-Content-Type-Options", "nosniff")
        return PLAYGROUND_FILE.read_bytes()

    @app.get("/openapi.json")
    @api
    def openapi():
        spec = json.loads(OPENAPI_FILE.read_text(encoding="utf-8"))
        spec["components"]["schemas"]["DetokenizeRequest"]["properties"]["ids"]["items"]["maximum"] = \
            tokenizer.vocab_size - 1  # the loaded model's vocabulary
        return spec

    @app.post("/tokenize")
    @api
    def tokenize():
        return {"ids": tokenizer.encode(tokenize_request(json_body()))}

    @app.post("/detokenize")
    @api
    def detokenize():
        return {"text": tokenizer.decode(detokenize_request(json_body(), tokenizer.vocab_size, limits))}

    @app.post("/generate")
    @api
    def generate():
        ids, settings = prepare_generation()
        tokens = collect(engine.submit(ids, settings), bottle.request.environ)
        body = {"text": "".join(t.text for t in tokens), "finish_reason": tokens[-1].finish_reason,
                "generated_tokens": len(tokens), "seed": settings.seed}
        if settings.logprobs is not None:
            body["tokens"] = [{"id": t.id, "text": token_text(t.id), **logprobs(t)} for t in tokens]
        return body

    @app.post("/generate_stream")
    @api
    def generate_stream():
        ids, settings = prepare_generation()  # every 4xx is decided before the stream starts
        request = engine.submit(ids, settings)
        bottle.response.content_type = "text/event-stream; charset=utf-8"
        bottle.response.set_header("Cache-Control", "no-cache")
        bottle.response.set_header("X-Accel-Buffering", "no")
        return stream_events(request, bottle.request.environ, settings.logprobs is not None)

    def stream_events(request, environ, with_logprobs: bool):
        """SSE: one `data: {"token", "id", "finish_reason"}` per token (and
        "logprob", "top_logprobs" when asked for), then
        `event: done` / `data: [DONE]`; a failure mid-stream is `event: error`.
        If the client goes away, Cheroot's failed write closes this generator
        (GeneratorExit at the yield), which cancels the request; before its
        first token nothing is written, so meanwhile the socket is asked."""
        count = 0
        try:
            for burst in client_bursts(request, environ):
                count += len(burst)
                yield b"".join(sse(dumps(token_event(token, with_logprobs))) for token in burst)
            yield sse("[DONE]", event="done")
        except Cancelled:
            pass  # nobody is there to tell
        except EngineError as e:
            yield sse(dumps(api_error(e).body()), event="error")
        finally:
            engine.cancel(request)  # a no-op once it has finished
            environ["inference.tokens"] = count

    def client_bursts(request, environ):
        """A request's tokens, a few at a time (`stream_interval`), raising
        Cancelled if its client leaves. A route hears of that from a failed
        write, and writes nothing while it collects a whole answer, or while a
        stream waits for its first token (a request waiting for a place would
        keep it, and then be prefilled, for a client long gone): so its socket
        is asked every CLIENT_POLL_S."""
        return request.bursts(stream_interval, CLIENT_POLL_S, connection_closed(environ))

    def token_event(token, with_logprobs: bool) -> dict:
        event = {"token": token.text, "id": token.id, "finish_reason": token.finish_reason}
        return event | logprobs(token) if with_logprobs else event

    started = int(time.time())

    @app.get("/v1/models")
    @openai_api
    def openai_models():
        return models_list(model.name, started)

    @app.post("/v1/completions")
    @openai_api
    def openai_completions():
        refuse_while_draining()
        req = completion_request(json_body(), limits)
        check_model(req.model)
        ids, settings = encode_prompt(req.prompt), with_seed(req.settings)
        completion = Completion(model.name, token_text if settings.logprobs is not None else None)
        request = engine.submit(ids, settings)
        if req.stream:
            bottle.response.content_type = "text/event-stream; charset=utf-8"
            bottle.response.set_header("Cache-Control", "no-cache")
            return openai_chunks(request, completion, req.include_usage, len(ids), bottle.request.environ)
        tokens = collect(request, bottle.request.environ)
        return completion.body(tokens, len(ids), request.cached_tokens)

    def collect(request, environ) -> list:
        """All of a request's tokens, cancelling it if the client leaves meanwhile."""
        try:
            tokens = [token for burst in client_bursts(request, environ) for token in burst]
        except Cancelled:
            engine.cancel(request)
            raise
        environ["inference.tokens"] = len(tokens)
        return tokens

    def openai_chunks(request, completion, include_usage, prompt_tokens, environ):
        """OpenAI's stream: a `data:` chunk per token, usage if asked, then `data: [DONE]`."""
        count = 0
        try:
            for burst in client_bursts(request, environ):
                count += len(burst)
                yield b"".join(sse(dumps(completion.chunk(token))) for token in burst)
            if include_usage:
                yield sse(dumps(completion.usage_chunk(prompt_tokens, count, request.cached_tokens)))
            yield sse("[DONE]")
        except Cancelled:
            pass
        except EngineError as e:
            yield sse(dumps(openai_error(api_error(e))))
        finally:
            engine.cancel(request)
            environ["inference.tokens"] = count

    def json_error(res: bottle.HTTPError):
        """Bottle's own errors (unknown path, wrong method, crashes) as JSON."""
        bottle.response.content_type = "application/json"
        if res.status_code == 404:
            message = f"no such endpoint: {bottle.request.method} {bottle.request.path}"
        elif res.status_code == 405:
            message = (f"{bottle.request.method} is not allowed on {bottle.request.path}; "
                       f"allowed: {res.headers.get('Allow')}")
        else:
            message = res.body if isinstance(res.body, str) and res.body else res.status_line
            if res.exception is not None:
                log.error("unhandled error on %s %s: %s", bottle.request.method, bottle.request.path, res.traceback)
        return dumps({"error": message, "error_type": ERROR_TYPES.get(res.status_code, "internal")})

    app.default_error_handler = json_error
    return app


def api(route, error_body=ApiError.body):
    """Turn an ApiError (or an EngineError) raised by a route into its status,
    headers and JSON body."""
    @functools.wraps(route)
    def wrapper(*args, **kwargs):
        try:
            try:
                return route(*args, **kwargs)
            except EngineError as e:
                raise api_error(e) from e
        except ApiError as e:
            bottle.response.status = e.status
            for name, value in e.headers.items():
                bottle.response.set_header(name, value)
            return error_body(e)
    return wrapper


def api_error(e: EngineError) -> ApiError:
    """What each of the engine's refusals and failures is over HTTP."""
    if isinstance(e, Overloaded):
        return ApiError(429, str(e), "overloaded", {"Retry-After": "1"})
    if isinstance(e, ShuttingDown):
        return ApiError(503, str(e), "unavailable", {"Retry-After": "1"})
    if isinstance(e, StepFailed):
        return ApiError(500, str(e), "backend")
    return ApiError(499, str(e), "cancelled")  # Cancelled: the client is gone; nobody reads this


def openai_api(route):
    """The same, with OpenAI's error shape, for the /v1 routes."""
    return api(route, error_body=openai_error)


def connection_closed(environ):
    """A check that the client of this request has closed its connection.
    A WSGI app hears of a closed socket only when it writes; a non-streaming
    route writes once, at the end. So while it waits it peeks: a socket that
    is readable but yields no bytes has been closed by the other side."""
    sock = environ.get("inference.socket")
    if sock is None:
        return None

    def closed() -> bool:
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            return bool(readable) and sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True
    return closed


def loading_app() -> bottle.Bottle:
    """What the server answers while the model loads and warms up: alive, not ready."""
    app = bottle.Bottle(autojson=True)
    not_yet = {"error": "the model is loading; retry shortly", "error_type": "unavailable"}

    @app.get("/live")
    def live():
        return {"status": "alive"}

    @app.get("/health")
    def health():
        bottle.response.status = 503
        return {"status": "loading", **not_yet}

    @app.route("/", method="ANY")
    @app.route("/<path:path>", method="ANY")
    def everything_else(path=""):  # the playground's page too: "/" is not a <path>
        bottle.response.status = 503
        bottle.response.set_header("Retry-After", "1")
        return not_yet
    return app


def make_server(app, host: str, port: int, threads: int, limits: Limits = Limits(), request_timeout: float = 10.0,
                cors_origins=(), api_key: str | None = None) -> Server:
    server = Server((host, port), None, numthreads=threads, request_queue_size=64, timeout=30, shutdown_timeout=2,
                    request_timeout=request_timeout)
    server.max_request_body_size = limits.max_body_bytes
    server.max_request_header_size = MAX_HEAD_BYTES
    serve_app(server, app, cors_origins, api_key)
    return server


def serve_app(server: Server, app: bottle.Bottle, cors_origins=(), api_key: str | None = None) -> None:
    """Put `app` (with its middleware) behind the server; it may already be
    serving: the start-up answers with loading_app() until the model is ready."""
    metrics, routes = app.config.get("inference.metrics"), {route.rule for route in app.routes}

    def on_response(path, status):  # unknown paths count as one route: an attacker's paths are not labels
        metrics.response(path if path in routes else "other", status)
    server.wsgi_app = wsgi_stack(app, cors_origins, api_key, on_response if metrics else None)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Each flag's default after its help, unless there is none to print (None):
    such a flag's help says what it falls back to."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m inference.server", description=__doc__.split("\n\n")[0],
                                 formatter_class=HelpFormatter)
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback: this machine only)")
    ap.add_argument("--port", type=port_number, default=8000, help="port to listen on (0: any free one)")
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="a Hugging Face GPT-2 folder")
    ap.add_argument("--device", choices=DEVICES, default="auto",
                    help="cpu: the NumPy reference; cpu-numba: its step compiled, faster, the first start "
                         "compiles for ~20 s; auto: cuda when a GPU is usable, else cpu-numba (else cpu)")
    ap.add_argument("--cuda-graphs", choices=("on", "off"), default="on",
                    help="cuda: replay the engine's decode steps as CUDA graphs; off launches every kernel of "
                         "every step (slower; to compare, or where a driver misbehaves)")
    ap.add_argument("--threads", type=at_least(1), default=None,
                    help="Cheroot worker threads; each generation holds one while it waits and runs, so there must "
                         "be more than --max-batch + --max-pending (default: those and "
                         f"{SPARE_THREADS} more, for /health, /metrics, 429 answers and the other routes)")
    ap.add_argument("--max-pending", type=at_least(1), default=16,
                    help="generations waiting for a place in the batch (beyond its free places) before new ones "
                         "get 429")
    ap.add_argument("--max-batch", type=at_least(1), default=16,
                    help="generations running together in one batch (1: one at a time)")
    ap.add_argument("--kv-blocks", type=at_least(1), default=None,
                    help="KV cache size in blocks of --block-size positions (default: --max-batch full contexts)")
    ap.add_argument("--block-size", type=at_least(1), default=16, help="positions per KV cache block")
    ap.add_argument("--max-step-tokens", type=at_least(1), default=64,
                    help="tokens one engine step computes at most: every decode, then prompt chunks")
    ap.add_argument("--stream-interval-ms", type=non_negative_ms, default=1000 * STREAM_INTERVAL_S,
                    help="a stream's pause after each write: the tokens that come meanwhile go in one write "
                         "(0: no pause: every token written as soon as it comes)")
    ap.add_argument("--max-new-tokens", type=at_least(1), default=Limits.max_new_tokens,
                    help="the largest max_new_tokens a request may ask for")
    ap.add_argument("--max-body-kb", type=at_least(1), default=Limits.max_body_bytes // 1024,
                    help="request bodies larger than this get 413")
    ap.add_argument("--request-timeout", type=positive_seconds, default=10.0,
                    help="seconds a client has to send a whole request (head and body) before a 408")
    ap.add_argument("--drain-timeout", type=positive_seconds, default=30.0,
                    help="on SIGTERM, seconds the running generations get to finish before they are cancelled")
    ap.add_argument("--api-key", default=None,  # the environment's is read after parsing: --help must not print it
                    help="require 'Authorization: Bearer KEY' on every route but /health, /live and /metrics "
                         "(default: $INFERENCE_API_KEY, else no key)")
    ap.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                    help="let web pages from ORIGIN (e.g. http://localhost:3000, or *) call the API; repeatable")
    ap.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"], type=str.upper,
                    help="INFO logs one line per request")
    args = ap.parse_args(argv)
    generations = args.max_batch + args.max_pending  # the most the engine holds at once
    if args.threads is None:
        args.threads = generations + SPARE_THREADS
    elif args.threads <= generations:
        ap.error(f"--threads ({args.threads}) must be more than --max-batch + --max-pending ({generations}): each "
                 f"generation holds a thread while it waits and runs, and /health or a 429 needs one too")
    if args.api_key is None:
        args.api_key = os.environ.get("INFERENCE_API_KEY")
    return args


def port_number(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 0 to 65535 (0: any free one), got {text!r}")
    return int(text)


def at_least(low: int):
    def check(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value
    return check


def number(text: str) -> float:  # the float the text says, or NaN, which no range holds
    try:
        return float(text)
    except ValueError:
        return float("nan")


def positive_seconds(text: str) -> float:
    value = number(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def non_negative_ms(text: str) -> float:
    value = number(text)
    if not 0 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"must be a number of milliseconds from 0 to 1000, got {text!r}")
    return value


def main(argv=None) -> int:
    """Listen at once (answering "loading" until the model is ready, so a
    balancer sees the replica come up), load and warm up the model, serve;
    on SIGTERM or Ctrl-C, drain and exit (while loading: exit at once)."""
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(message)s")
    limits = Limits(max_body_bytes=args.max_body_kb * 1024, max_new_tokens=args.max_new_tokens)
    server = make_server(loading_app(), args.host, args.port, args.threads, limits, args.request_timeout,
                         args.cors_origin, args.api_key)
    # Until the model serves (a first start of cpu-numba compiles its step for seconds), Ctrl-C stops at
    # once and SIGTERM ends the process: nothing runs yet that a drain would wait for.
    signal.signal(signal.SIGINT, interrupt_once)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        app, load_s, warm_up_s = start_up(server, args, limits)
    except BaseException as e:
        server.stop()  # its worker threads would keep the process alive, answering /live, for good
        if isinstance(e, StartUpError):
            print(f"error: {e}", file=sys.stderr)
            return 1
        if isinstance(e, KeyboardInterrupt):
            print("interrupted while loading", file=sys.stderr)
            return 130
        raise  # a fault of ours: its traceback, and exit status 1
    # From now on a signal drains the running generations first. Its handler only notes it: a handler
    # runs between any two steps of the main thread, even inside itself when signals come in a burst
    # (`timeout` signals the server and its process group; Ctrl-C pressed twice), and one that took a
    # lock (threading.Event.set) could wait for a lock it holds already, hanging the server for good.
    stop_signals = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: stop_signals.append(signum))
    serve_app(server, app, args.cors_origin, args.api_key)
    engine, (host, port) = app.config["inference.engine"], server.bind_addr[:2]
    model, blocks = engine.model, engine.blocks
    log.info("serving %s on %s (device %s, load %.2f s, warm-up %.2f s; KV cache %d blocks of %d positions, %.0f MiB)",
             model.name, url(host, port), model.device, load_s, warm_up_s, blocks.n_blocks, blocks.block_size,
             KVPool.nbytes(model.config, blocks.n_blocks, blocks.block_size) / 2 ** 20)
    while not stop_signals:
        time.sleep(SIGNAL_POLL_S)
    if stop_signals[0] == signal.SIGINT:
        log.info("Ctrl-C: the running generations may finish; Ctrl-C again ends them at once")
    # A second Ctrl-C is a person who will not wait. A second SIGTERM is not: `timeout` and process
    # groups deliver two, and a supervisor's SIGTERM must always let the generations finish.
    drain(app, args.drain_timeout, cut_short=lambda: stop_signals.count(signal.SIGINT) > 1)
    shut_down(server, app.config["inference.engine"])
    return 0


def interrupt_once(signum, frame):
    """Ctrl-C while loading: stop (KeyboardInterrupt), and ignore any more, which would interrupt
    the stopping itself (leaving Cheroot's workers, not daemons, to hold the process open). They go
    to a handler that does nothing, not to SIG_IGN: a Ctrl-C already caught but not yet handled when
    SIG_IGN took over made CPython print "OSError: Signal 2 ignored due to race condition"."""
    signal.signal(signal.SIGINT, lambda signum, frame: None)
    raise KeyboardInterrupt


def url(host: str, port: int) -> str:  # where the server answers; an IPv6 address in brackets: http://[::1]:8000
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class StartUpError(Exception):
    pass


def start_up(server: Server, args, limits: Limits):  # -> the app, the load's seconds, the warm-up's seconds
    """Listen (answering "loading"), then load and warm up the model."""
    try:
        server.prepare()
    except OSError as e:
        raise StartUpError(f"cannot listen on {args.host}:{args.port}: {e}") from e
    except RuntimeError as e:
        raise StartUpError(f"cannot start the server's {args.threads} worker threads (--threads): {e}") from e
    threading.Thread(target=server.serve, name="server", daemon=True).start()
    host, port = server.bind_addr[:2]
    log.info("loading %s on --device %s; %s answers 503 until it is ready", args.model, args.device, url(host, port))
    return load_and_warm_up(args, limits)


def load_and_warm_up(args, limits: Limits):  # -> the app, the load's seconds, the warm-up's seconds
    t0 = time.perf_counter()
    try:
        # cpu-numba compiles most of its loops here
        model = load_model(args.model, args.device, cuda_graphs=args.cuda_graphs == "on")
    except (CheckpointError, TokenizerError, DeviceError, OSError, ValueError) as e:
        raise StartUpError(f"cannot start the server: {e}") from e
    try:
        app = create_app(model, limits, args.max_pending, args.stream_interval_ms / 1000, max_batch=args.max_batch,
                         kv_blocks=args.kv_blocks, block_size=args.block_size, max_step_tokens=args.max_step_tokens)
    except ValueError as e:
        raise StartUpError(f"cannot start the server: {e}") from e
    except MemoryError as e:  # the KV cache's pool: beyond the memory left (memory.py), or the GPU's refusal
        size = f"--kv-blocks {args.kv_blocks}" if args.kv_blocks else f"--max-batch {args.max_batch} full contexts"
        raise StartUpError(f"cannot start the server: its KV cache does not fit in memory ({size}, --block-size "
                           f"{args.block_size}): {e}") from e
    engine, load_s = app.config["inference.engine"], time.perf_counter() - t0
    try:
        return app, load_s, engine.warm_up()
    except Exception as e:  # e.g. a CUDA error: better refused now than a 500 on every request
        engine.stop()
        raise StartUpError(f"cannot start the server: the model failed its warm-up run on {model.device}: {e}") from e


def drain(app: bottle.Bottle, timeout: float, cut_short=lambda: False) -> None:
    """Take no new generations (503, and /health says so, so balancers move
    away) and give the running ones up to `timeout` seconds to finish, or
    until cut_short() says to stop waiting."""
    app.config["inference.draining"] = True
    engine = app.config["inference.engine"]
    log.info("draining: %d running, %d waiting", engine.stats()["running"], engine.stats()["waiting"])
    deadline = time.monotonic() + timeout
    while not engine.idle() and time.monotonic() < deadline and not cut_short():
        time.sleep(0.05)


SHUTDOWN_SECONDS = 3.0
SIGNAL_POLL_S = 0.1  # how often the main thread looks for a stop signal while the server serves


def shut_down(server: Server, engine: Engine, exit_process: bool = True) -> None:
    """Stop listening, end every generation left (a stream gets `event:
    error`), and wait a little for the workers. A worker still busy after that
    (a long request being encoded, say) is abandoned: the process exits all
    the same."""
    engine.stop()
    stopper = threading.Thread(target=server.stop, daemon=True)
    stopper.start()
    stopper.join(SHUTDOWN_SECONDS)
    log.info("shut down")
    if stopper.is_alive() and exit_process:
        logging.shutdown()
        os._exit(0)  # Cheroot's worker threads are not daemons: a normal exit would wait for them


if __name__ == "__main__":
    sys.exit(main())
