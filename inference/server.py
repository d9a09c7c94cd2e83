"""The HTTP API of docs/api.md: Bottle routes on a Cheroot WSGI server.

    python -m inference.server [--host 127.0.0.1] [--port 8000] [--model DIR] [--device auto]

A request's life: Cheroot's thread pool hands the WSGI call to Bottle; the
route reads and checks the JSON body (inference.validation), encodes the
prompt, takes a place in the bounded admission count (or answers 429), then
waits for the model lock (one generation at a time), runs the generation
loop and answers JSON, or Server-Sent Events for /generate_stream.
/health, /tokenize and /detokenize never touch the lock, so they answer
while a long generation runs.
"""

import argparse
import functools
import json
import logging
import secrets
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import bottle
from cheroot import wsgi

from .backends import DeviceError, load_model, warm_up
from .checkpoint import CheckpointError
from .generation import generate_tokens
from .tokenizer import TokenizerError
from .validation import (ApiError, Limits, detokenize_request, generate_request, invalid, parse_json_object,
                         tokenize_request)

log = logging.getLogger("inference.server")
DEFAULT_MODEL = Path(__file__).resolve().parent.parent / "data" / "claude-rust-small"
OPENAPI_FILE = Path(__file__).with_name("openapi.json")


class Admission:
    """At most `max_pending` generations queued or running; the model itself
    runs one at a time under `model_lock`."""

    def __init__(self, max_pending: int):
        self.max_pending = max_pending
        self.pending = 0
        self._count_lock = threading.Lock()
        self.model_lock = threading.Lock()

    def enter(self) -> None:
        with self._count_lock:
            if self.pending >= self.max_pending:
                raise ApiError(429, f"server is busy: {self.pending} generations are queued or running "
                                    f"(limit {self.max_pending}); retry shortly", "overloaded", {"Retry-After": "1"})
            self.pending += 1

    def leave(self) -> None:
        with self._count_lock:
            self.pending -= 1


def sse(data: str, event: str | None = None) -> bytes:
    """One Server-Sent Event: optional `event:` line, one `data:` line, a blank line."""
    return (f"event: {event}\n" if event else "").encode() + f"data: {data}\n\n".encode("utf-8")


def dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)


def create_app(model, limits: Limits = Limits(), max_pending: int = 16) -> bottle.Bottle:
    app = bottle.Bottle(autojson=True)
    admission = Admission(max_pending)
    tokenizer, n_ctx = model.tokenizer, model.config.n_ctx
    app.config["inference.admission"] = admission

    def json_body() -> dict:
        request = bottle.request
        if request.content_length > limits.max_body_bytes:
            raise ApiError(413, f"request body is {request.content_length} bytes; the limit is "
                                f"{limits.max_body_bytes}", "too_large")
        body = request.body.read(limits.max_body_bytes + 1)
        if len(body) > limits.max_body_bytes:
            raise ApiError(413, f"request body is over the limit of {limits.max_body_bytes} bytes", "too_large")
        return parse_json_object(body)

    def prepare_generation():  # -> prompt ids, settings (with the seed that will be used)
        req = generate_request(json_body(), limits)
        if req.model is not None and req.model != model.name:
            raise ApiError(404, f"model {req.model!r} is not loaded; this server serves {model.name!r}", "not_found")
        ids = tokenizer.encode(req.prompt)
        if len(ids) >= n_ctx:
            raise invalid(f"prompt is {len(ids)} tokens; the context holds {n_ctx}, "
                          f"so a prompt may have at most {n_ctx - 1}")
        seed = req.settings.seed if req.settings.seed is not None else secrets.randbits(63)
        return ids, replace(req.settings, seed=seed)

    @app.get("/health")
    @api
    def health():
        return {"status": "ok", "model": model.name, "device": model.device}

    @app.get("/openapi.json")
    @api
    def openapi():
        return json.loads(OPENAPI_FILE.read_text(encoding="utf-8"))

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
        admission.enter()
        try:
            with admission.model_lock:
                tokens = list(generate_tokens(model, ids, settings))
        except Exception as e:
            raise backend_error(e) from e
        finally:
            admission.leave()
        bottle.request.environ["inference.tokens"] = len(tokens)
        return {"text": "".join(t.text for t in tokens), "finish_reason": tokens[-1].finish_reason,
                "generated_tokens": len(tokens), "seed": settings.seed}

    @app.post("/generate_stream")
    @api
    def generate_stream():
        ids, settings = prepare_generation()  # every 4xx is decided before the stream starts
        admission.enter()
        bottle.response.content_type = "text/event-stream; charset=utf-8"
        bottle.response.set_header("Cache-Control", "no-cache")
        bottle.response.set_header("X-Accel-Buffering", "no")
        return stream_events(ids, settings, bottle.request.environ)

    def stream_events(ids, settings, environ):
        """SSE: one `data: {"token", "id", "finish_reason"}` per token, then
        `event: done` / `data: [DONE]`; a failure mid-stream is `event: error`.
        If the client goes away, Cheroot's failed write closes this generator
        (GeneratorExit at the yield), which ends the generation."""
        count = 0
        try:
            with admission.model_lock:
                try:
                    for token in generate_tokens(model, ids, settings):
                        count += 1
                        yield sse(dumps({"token": token.text, "id": token.id, "finish_reason": token.finish_reason}))
                except Exception as e:
                    yield sse(dumps(backend_error(e).body()), event="error")
                    return
            yield sse("[DONE]", event="done")
        finally:
            admission.leave()
            environ["inference.tokens"] = count

    def json_error(res: bottle.HTTPError):
        """Bottle's own errors (unknown path, wrong method, crashes) as JSON."""
        bottle.response.content_type = "application/json"
        types = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}
        if res.status_code == 404:
            message = f"no such endpoint: {bottle.request.method} {bottle.request.path}"
        elif res.status_code == 405:
            message = f"{bottle.request.method} is not allowed on {bottle.request.path}; allowed: {res.headers.get('Allow')}"
        else:
            message = res.body if isinstance(res.body, str) and res.body else res.status_line
            if res.exception is not None:
                log.error("unhandled error on %s %s: %s", bottle.request.method, bottle.request.path, res.traceback)
        return dumps({"error": message, "error_type": types.get(res.status_code, "server")})

    app.default_error_handler = json_error
    return app


def api(route):
    """Turn an ApiError raised by a route into its status, headers and JSON body."""
    @functools.wraps(route)
    def wrapper(*args, **kwargs):
        try:
            return route(*args, **kwargs)
        except ApiError as e:
            bottle.response.status = e.status
            for name, value in e.headers.items():
                bottle.response.set_header(name, value)
            return e.body()
    return wrapper


def backend_error(e: Exception) -> ApiError:
    log.error("generation failed", exc_info=e)
    return ApiError(500, f"generation failed: {type(e).__name__}: {e}", "backend")


class AccessLog:
    """WSGI middleware: one line per request when its response is done."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        start, status = time.perf_counter(), ["-"]

        def record_status(s, headers, exc_info=None):
            status[0] = s.split(" ", 1)[0]
            return start_response(s, headers, exc_info)

        body = self.app(environ, record_status)

        def done():
            log.info("%s %s %s %.1fms tokens=%s", environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""),
                     status[0], (time.perf_counter() - start) * 1000, environ.get("inference.tokens", 0))
        return ClosingIterable(body, done)


class ClosingIterable:
    def __init__(self, body, on_close):
        self.body, self.on_close = body, on_close

    def __iter__(self):
        return iter(self.body)

    def close(self):
        try:
            if hasattr(self.body, "close"):
                self.body.close()
        finally:
            self.on_close()


class FlushingGateway(wsgi.Gateway_10):
    """Cheroot buffers writes; SSE needs every event on the wire at once."""

    def write(self, chunk):
        super().write(chunk)
        self.req.conn.wfile.flush()


def make_server(app, host: str, port: int, threads: int, limits: Limits = Limits()) -> wsgi.Server:
    server = wsgi.Server((host, port), AccessLog(app), numthreads=threads, request_queue_size=64,
                         timeout=30, shutdown_timeout=2)
    server.gateway = FlushingGateway
    server.max_request_body_size = 4 * limits.max_body_bytes  # a backstop for bodies without Content-Length
    return server


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m inference.server", description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="a Hugging Face GPT-2 folder")
    ap.add_argument("--device", choices=["cpu", "cuda", "auto"], default="auto",
                    help="auto: cuda when a GPU is usable, else cpu")
    ap.add_argument("--threads", type=int, default=32, help="Cheroot worker threads")
    ap.add_argument("--max-pending", type=int, default=16,
                    help="generations queued or running before new ones get 429")
    ap.add_argument("--max-new-tokens", type=int, default=Limits.max_new_tokens,
                    help="the largest max_new_tokens a request may ask for")
    ap.add_argument("--max-body-kb", type=int, default=Limits.max_body_bytes // 1024,
                    help="request bodies larger than this get 413")
    ap.add_argument("--log-level", default="INFO")
    return ap.parse_args(argv)


def stop_on_signal(signum, frame):
    raise KeyboardInterrupt  # Ctrl-C and SIGTERM: the same clean shutdown


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    try:
        model = load_model(args.model, args.device)
    except (CheckpointError, TokenizerError, DeviceError, OSError, ValueError) as e:
        print(f"error: cannot start the server: {e}", file=sys.stderr)
        return 1
    try:
        warm_up_s = warm_up(model)
    except Exception as e:  # e.g. a CUDA error: better refused now than a 500 on every request
        print(f"error: cannot start the server: the model failed its warm-up run on {model.device}: {e}",
              file=sys.stderr)
        return 1
    limits = Limits(max_body_bytes=args.max_body_kb * 1024, max_new_tokens=args.max_new_tokens)
    server = make_server(create_app(model, limits, args.max_pending), args.host, args.port, args.threads, limits)
    try:
        server.prepare()
    except OSError as e:
        print(f"error: cannot listen on {args.host}:{args.port}: {e}", file=sys.stderr)
        return 1
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop_on_signal)
    host, port = server.bind_addr[:2]
    log.info("serving %s on http://%s:%d (device %s, warm-up %.2f s)", model.name, host, port, model.device,
             warm_up_s)
    try:
        server.serve()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        log.info("shut down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
