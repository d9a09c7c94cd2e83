"""HTTP/1.1 on Cheroot, for clients that cannot be trusted.

Cheroot gives each connection to a worker thread, which then reads the request
with blocking reads. A client that sends half a request and waits holds that
thread; 32 such clients hold them all, and nobody else is answered. So here a
request is received whole *before* any worker sees it, as nginx does:

    accept --> RequestGate, on the connection manager's one thread: read what
               each socket has, without waiting, until the head and the body
               its headers announce are complete; past the deadline: 408, close
           --> a worker thread parses the request from memory and runs the app

A slow client then costs a buffer, not a thread. The deadline is a bound on
the *total* time to send a request (not per read, which one byte every few
seconds would renew forever).

Also here: Cheroot's own error answers (a malformed request line, a bad
Content-Length, a body over the limit) are JSON like every other error and
are logged; Server-Sent Events are flushed at once; one access-log line per
request; the workers give way to the engine's step (GiveWay).
"""

import contextlib
import hmac
import json
import logging
import os
import socket
import threading
import time

from cheroot import connections, errors, server as cheroot_server, wsgi
from cheroot.workers.threadpool import _SHUTDOWNREQUEST, WorkerThread

log = logging.getLogger("inference.server")

MAX_HEAD_BYTES = 64 * 1024  # request line + headers
READ_SIZE = 64 * 1024

# error_type for each status the server answers with; docs/api.md lists them.
ERROR_TYPES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 408: "timeout", 413: "too_large", 414: "too_large",
               415: "unsupported_media_type", 429: "overloaded", 431: "too_large", 501: "bad_request",
               503: "unavailable", 505: "bad_request"}


def error_json(status: int, message: str, error_type: str | None = None) -> bytes:
    return json.dumps({"error": message, "error_type": error_type or ERROR_TYPES.get(status, "internal")},
                      ensure_ascii=False).encode("utf-8")


def access_log(method, path, status, started: float, tokens=0) -> None:
    log.info("%s %s %s %.1fms tokens=%s", method, path, status, (time.perf_counter() - started) * 1000, tokens)


# ------------------------------------------------------------ the request gate

class RequestReader:
    """A connection's rfile: the bytes the gate has received, then the socket.

    A worker reads a request the gate found complete, so it never waits on
    the socket, except where the gate stopped early because waiting could not
    help (a head or body over its limit, a malformed length): the worker then
    answers the error from what is here. Those reads block with the socket's
    timeout, as Cheroot's own reader does.
    """

    def __init__(self, sock: socket.socket):
        self.sock, self.buffer, self.pos, self.eof, self.closed = sock, bytearray(), 0, False, False

    def receive(self) -> bool:
        """Append what the socket holds now, without waiting. False once the peer has closed."""
        del self.buffer[:self.pos]  # the gate only ever holds the start of one request
        self.pos = 0
        try:
            with nonblocking(self.sock):
                data = self.sock.recv(READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False
        self.buffer += data
        while self.buffer.startswith(b"\r\n"):  # empty lines before a request line are ignored (RFC 9112 2.2)
            del self.buffer[:2]
        return bool(data)

    def _fill(self) -> bool:  # blocking; only for requests the gate handed on early
        if self.eof:
            return False
        data = self.sock.recv(READ_SIZE)
        self.buffer += data
        self.eof = not data
        return bool(data)

    def read(self, size=-1) -> bytes:
        while (size is None or size < 0 or len(self.buffer) - self.pos < size) and self._fill():
            pass
        end = len(self.buffer) if size is None or size < 0 else self.pos + size
        data = bytes(self.buffer[self.pos:end])
        self.pos += len(data)
        return data

    def readline(self, size=-1) -> bytes:
        while True:
            newline = self.buffer.find(b"\n", self.pos)
            end = newline + 1 if newline >= 0 else len(self.buffer)
            if size is not None and 0 <= size < end - self.pos:
                end = self.pos + size
            if newline >= 0 or end - self.pos == size or not self._fill():
                data = bytes(self.buffer[self.pos:end])
                self.pos = end
                return data

    def has_data(self) -> bool:
        return self.pos < len(self.buffer)

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def close(self) -> None:
        self.closed = True


class PendingRequest:
    """What the gate knows of a request it is receiving, kept between reads so
    that a client sending a byte at a time costs O(bytes), not O(bytes^2).
    Offsets count from the request's first byte (buffer[0])."""

    def __init__(self, deadline: float):
        self.deadline, self.started = deadline, time.perf_counter()
        self.scanned = 0        # the head's end is not before this offset
        self.body = None        # where the body starts, once the head is complete
        self.length = None      # Content-Length framing: the body's size
        self.chunk = None       # chunked framing: offset of the next chunk-size line
        self.chunked_bytes = 0  # chunked framing: body bytes so far
        self.expects_continue = self.continue_sent = False

    def complete(self, buffer: bytearray, max_body: int) -> bool:
        """Is the whole request here? Also True when more bytes could not help
        (too long, a bad Content-Length): a worker answers that from what is
        here. A malformed chunked body raises MalformedBody."""
        if self.body is None:
            end = buffer.find(b"\r\n\r\n", max(0, self.scanned - 3))
            if end < 0:
                self.scanned = len(buffer)
                return len(buffer) > MAX_HEAD_BYTES
            self.body = end + 4
            headers = head_fields(bytes(buffer[:end]))
            if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
                self.chunk = self.body
            else:
                length = headers.get(b"content-length", b"0").strip()
                if not length.isdigit() or int(length) > max_body:
                    return True
                self.length = int(length)
            self.expects_continue = headers.get(b"expect", b"").lower() == b"100-continue"
        if self.length is not None:
            return len(buffer) >= self.body + self.length
        return self.chunked_body_complete(buffer, max_body)

    def chunked_body_complete(self, buffer: bytearray, max_body: int) -> bool:
        while True:
            line_end = buffer.find(b"\r\n", self.chunk)
            if line_end < 0:
                return len(buffer) - self.chunk > 1024  # no chunk-size line is that long
            size_field = bytes(buffer[self.chunk:line_end]).split(b";")[0].strip()
            if not size_field or size_field.strip(b"0123456789abcdefABCDEF"):
                raise MalformedBody(f"chunk size {size_field[:20]!r} is not a hexadecimal number")
            size = int(size_field, 16)
            if self.chunked_bytes + size > max_body:
                return True
            if size == 0:  # the last chunk, then trailer lines up to an empty line
                trailer = line_end + 2
                return buffer.startswith(b"\r\n", trailer) or buffer.find(b"\r\n\r\n", trailer) >= 0
            data_end = line_end + 2 + size
            if len(buffer) < data_end + 2:
                return False
            if buffer[data_end:data_end + 2] != b"\r\n":
                raise MalformedBody(f"a chunk of {size} bytes is not followed by CRLF")
            self.chunk, self.chunked_bytes = data_end + 2, self.chunked_bytes + size


class MalformedBody(ValueError):
    pass


def head_fields(head: bytes) -> dict[bytes, bytes]:
    """The header fields of a request head, names lowercased (the last of repeats wins:
    Cheroot itself rejects what matters, such as two different Content-Lengths)."""
    fields = {}
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            fields[name.strip().lower()] = value.strip()
    return fields


class GatedConnectionManager(connections.ConnectionManager):
    """Cheroot's connection manager (a selector over idle connections) that also
    holds connections whose request is still arriving, and times them out."""

    def __init__(self, server):
        super().__init__(server)
        self.pending: dict = {}  # conn -> PendingRequest
        self.lock = threading.Lock()

    def receive(self, conn) -> None:
        """conn has bytes to read (or has closed): read them; hand the request
        to a worker once it is whole, else wait for more."""
        with self.lock:
            pending = self.pending.pop(conn, None)
        is_open = conn.rfile.receive()
        if pending is None and not conn.rfile.has_data():  # nothing of a request yet: an idle connection
            if is_open:
                self.wait_for(conn)
            else:
                conn.close()
            return
        pending = pending or PendingRequest(time.monotonic() + self.server.request_timeout)
        try:
            complete = pending.complete(conn.rfile.buffer, self.server.max_request_body_size)
        except MalformedBody as e:
            refuse(conn, 400, f"malformed chunked request body: {e}", pending.started)
            return
        if complete:
            self.server.hand_to_worker(conn)
        elif not is_open:
            conn.close()  # the client went away before its request was whole
        else:
            if pending.body is not None and pending.expects_continue and not pending.continue_sent:
                pending.continue_sent = send_now(conn, b"HTTP/1.1 100 Continue\r\n\r\n")
            with self.lock:
                self.pending[conn] = pending
            self.wait_for(conn)

    def wait_for(self, conn) -> None:
        """Back into the selector until conn has more to read."""
        conn.last_used = time.time()
        self._selector.register(conn.socket.fileno(), connections.selectors.EVENT_READ, data=conn)

    def _expire(self, threshold):
        now = time.monotonic()
        with self.lock:
            late = [(conn, p) for conn, p in self.pending.items() if p.deadline <= now]
            for conn, _ in late:
                del self.pending[conn]
        for conn, pending in late:
            self._selector.unregister(conn.socket.fileno())
            refuse(conn, 408, f"the request was not received in full within {self.server.request_timeout:g} s",
                   pending.started)
        super()._expire(threshold)

    def close(self):
        with self.lock:
            self.pending.clear()
        super().close()


def refuse(conn, status: int, message: str, started: float) -> None:
    """The gate's own answer to a request it will not hand on; then it closes."""
    body = error_json(status, message)
    reason = {400: "Bad Request", 408: "Request Timeout"}[status]
    send_now(conn, b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nConnection: close\r\n"
                   b"Content-Length: %d\r\n\r\n%s" % (status, reason.encode(), len(body), body))
    conn.close()
    access_log("-", "-", status, started)


def send_now(conn, data: bytes) -> bool:
    """Best effort, never waiting: the gate's thread must not block on one client."""
    try:
        with nonblocking(conn.socket):
            return conn.socket.send(data) == len(data)
    except OSError:
        return False


@contextlib.contextmanager
def nonblocking(sock: socket.socket):
    """A socket with a timeout waits for readiness even when asked not to
    (MSG_DONTWAIT); only a timeout of 0 makes it fail at once instead."""
    timeout = sock.gettimeout()
    sock.settimeout(0)
    try:
        yield sock
    finally:
        sock.settimeout(timeout)


# ------------------------------------------------ Cheroot's own answers as JSON

class JsonErrorRequest(cheroot_server.HTTPRequest):
    """Cheroot answers some requests itself, before the app sees them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.started = time.perf_counter()

    def simple_response(self, status, msg=""):
        code = int(str(status)[:3])
        if code < 400:
            return super().simple_response(status, msg)
        body = error_json(code, self.explain(code, msg or str(status)[4:]))
        head = [f"{self.server.protocol} {status}", "Content-Type: application/json",
                f"Content-Length: {len(body)}", "Connection: close"]
        self.close_connection = True  # after a malformed request, nothing on this connection can be trusted
        try:
            self.conn.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        except OSError as e:
            if e.args[0] not in errors.socket_errors_to_ignore:
                raise
        method, path = (getattr(self, name, None) for name in ("method", "path"))  # None if not parsed yet
        access_log(method.decode("latin-1") if method else "-", path.decode("latin-1") if path else "-", code,
                   self.started)


    def explain(self, code: int, message: str) -> str:
        """Cheroot's message, with the numbers where it leaves them out."""
        limit = self.server.max_request_body_size
        if code == 413 and b"Content-Length" in getattr(self, "inheaders", {}):
            return f"request body is {int(self.inheaders[b'Content-Length'])} bytes; the limit is {limit}"
        if code == 413:
            return f"request head or body is over the limit ({MAX_HEAD_BYTES} bytes of head, {limit} of body)"
        return message


class GatedConnection(cheroot_server.HTTPConnection):
    RequestHandlerClass = JsonErrorRequest

    def __init__(self, server, sock, makefile=None):
        super().__init__(server, sock)
        self.rfile = RequestReader(sock)


class Gateway(wsgi.Gateway_10):
    """Cheroot's WSGI gateway, with writes flushed at once (SSE needs every event
    on the wire as it happens) and the connection closed after a response
    whose request body was not read to its end: its remaining bytes would be
    parsed as the next request."""

    def start_response(self, status, headers, exc_info=None):
        write = super().start_response(status, headers, exc_info)
        asks_to_close = any(k.lower() == "connection" and v.lower() == "close" for k, v in headers)
        unread_chunks = self.req.chunked_read and not self.req.rfile.closed
        if asks_to_close or unread_chunks:
            self.req.close_connection = True
        return write

    def get_environ(self):
        environ = super().get_environ()
        environ["inference.socket"] = self.req.conn.socket  # to notice a client that left (server.py)
        return environ

    def write(self, chunk):
        super().write(chunk)
        self.req.conn.wfile.flush()


class Server(wsgi.Server):
    """Cheroot's WSGI server with the request gate in front of its workers."""

    ConnectionClass = GatedConnection

    def __init__(self, *args, request_timeout: float = 10.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.request_timeout = request_timeout
        self.gateway = Gateway

    def prepare(self):
        try:
            super().prepare()
        except RuntimeError:  # "can't start new thread": a limit on threads (a container's pids limit, ulimit -u)
            self.stop_started_workers()
            raise
        self._connections = GatedConnectionManager(self)

    def stop_started_workers(self):
        """The workers a failed prepare() started before the limit: Cheroot's pool
        had not counted them yet, so stop() would leave them, and, not daemons,
        they would keep the process alive for good."""
        workers = [t for t in threading.enumerate() if isinstance(t, WorkerThread) and t.server is self]
        for _ in workers:
            self.requests.put(_SHUTDOWNREQUEST)  # each worker takes one and returns
        for worker in workers:
            worker.join()

    def process_conn(self, conn):
        """Cheroot calls this when conn has something to read: gate it first."""
        self._connections.receive(conn)

    def hand_to_worker(self, conn):
        super().process_conn(conn)


# ------------------------------------------------------------------ giving way

class GiveWay:
    """WSGI middleware: each worker thread, at its first request, asks Linux to
    schedule it as a batch thread (SCHED_BATCH), one that does not take a
    core the moment it wakes. A worker wakes for every burst of tokens it
    writes; under the usual policy it takes a core from one of the engine
    step's threads at once, and the step's other thread waits for it at the
    end of every parallel loop. As batch threads they run a few milliseconds
    later instead: the server's step of 8 sequences took 1.19-1.30 ms against
    1.29-1.42, 3-7% more tokens per second (scripts/bench_batching.py, five
    runs in turns, 2 cores). Nothing changes where Linux has no such policy."""

    def __init__(self, app):
        self.app, self.threads = app, threading.local()

    def __call__(self, environ, start_response):
        if not getattr(self.threads, "given_way", False):
            self.threads.given_way = True
            with contextlib.suppress(AttributeError, OSError):  # not Linux; or a sandbox that forbids it
                os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))  # 0: the calling thread
        return self.app(environ, start_response)


# ------------------------------------------------------------------ access log

class AccessLog:
    """WSGI middleware: one line per request when its response is done, and
    `on_response(path, status)` for metrics."""

    def __init__(self, app, on_response=None):
        self.app, self.on_response = app, on_response

    def __call__(self, environ, start_response):
        started, status = time.perf_counter(), ["-"]

        def record_status(s, headers, exc_info=None):
            status[0] = s.split(" ", 1)[0]
            return start_response(s, headers, exc_info)

        body = self.app(environ, record_status)

        def done():
            access_log(environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""), status[0], started,
                       environ.get("inference.tokens", 0))
            if self.on_response is not None:
                self.on_response(environ.get("PATH_INFO", ""), status[0])
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


# ------------------------------------------------------------------------ CORS

class Cors:
    """WSGI middleware that lets web pages from other origins call the API; off
    unless origins are given (`--cors-origin`).

    A browser lets a page read a response from another origin only when the
    response names that origin in Access-Control-Allow-Origin, and before it
    sends a POST with a JSON body it asks first: an OPTIONS "preflight"
    naming the method and headers it wants to send. Without origins, neither
    is answered (OPTIONS is a 405), so the browser refuses.
    """

    METHODS, HEADERS = "GET, POST, OPTIONS", "Content-Type, Authorization"

    def __init__(self, app, origins=()):
        self.app, self.origins = app, frozenset(origins)

    def allow_origin(self, origin: str) -> str | None:
        if "*" in self.origins:
            return "*"
        return origin if origin in self.origins else None

    def __call__(self, environ, start_response):
        if not self.origins:
            return self.app(environ, start_response)
        allowed = self.allow_origin(environ.get("HTTP_ORIGIN", ""))
        cors = [("Access-Control-Allow-Origin", allowed), ("Vary", "Origin")] if allowed else []
        if environ["REQUEST_METHOD"] == "OPTIONS" and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ:
            if not allowed:
                body = error_json(403, f"origin {environ.get('HTTP_ORIGIN', '(none)')!r} may not call this API")
                start_response("403 Forbidden", [("Content-Type", "application/json"),
                                                 ("Content-Length", str(len(body)))])
                return [body]
            start_response("204 No Content", cors + [("Access-Control-Allow-Methods", self.METHODS),
                                                     ("Access-Control-Allow-Headers", self.HEADERS),
                                                     ("Access-Control-Max-Age", "600")])
            return []

        def with_cors(status, headers, exc_info=None):
            return start_response(status, headers + cors + [("Access-Control-Expose-Headers", "Retry-After")]
                                  if cors else headers, exc_info)
        return self.app(environ, with_cors)


# --------------------------------------------------------------------- API key

class ApiKey:
    """WSGI middleware: with a key, every route but `open_paths` needs
    `Authorization: Bearer <key>`, else a JSON 401. CORS preflights carry no
    credentials (browsers never send them), so OPTIONS passes."""

    def __init__(self, app, key: str | None, open_paths=("/health", "/live", "/metrics")):
        self.app, self.key, self.open_paths = app, key, frozenset(open_paths)

    def __call__(self, environ, start_response):
        if (self.key is None or environ.get("PATH_INFO") in self.open_paths
                or environ["REQUEST_METHOD"] == "OPTIONS" or self.authorized(environ.get("HTTP_AUTHORIZATION", ""))):
            return self.app(environ, start_response)
        body = error_json(401, "this server needs an API key: send Authorization: Bearer <key>")
        start_response("401 Unauthorized", [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                                            ("WWW-Authenticate", "Bearer")])
        return [body]

    def authorized(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), self.key.encode())


def wsgi_stack(app, cors_origins=(), api_key=None, on_response=None):
    """The middleware around an app, outermost first: the workers giving way
    to the engine, the access log (and metrics), CORS (so that even a 401 can
    be read by an allowed page), the key."""
    return GiveWay(AccessLog(Cors(ApiKey(app, api_key), cors_origins), on_response))
