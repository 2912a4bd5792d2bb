"""A small HTTP/1.1 server for the scoring runtime: one thread per connection, keep-alive,
pipelining, ``Content-Length`` and chunked request bodies, a body-size limit enforced before the
body is read, and a graceful stop (stop accepting, finish what is in flight, close idle
connections).

Why threads: ``run()`` calls are serialized by the application anyway, so the server's job is to
keep the per-request cost low and never let a slow ``run()`` hold up a health check. A blocking
thread per connection does both with the least work per request (one ``recv``, one ``sendall``);
keep-alive removes the connect/accept/close that dominates azmlinfsrv's cost per request.

Standard library only: this runs on the user environment's interpreter.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable

from kiln.serving.runtime_protocol import (
    MAX_HEAD_BYTES,
    App,
    HttpError,
    Request,
    check_head_so_far,
    encode_response,
    find_head_end,
    head_start,
    header_map,
    keeps_alive,
    parse_head,
)

STOP_LINGER = 2.0  # seconds an idle connection may still send a request once the worker stops
IDLE_TIMEOUT = 30.0  # seconds a keep-alive connection may sit idle between requests
# Seconds from a request's first byte to its last: a client trickling a header line at a time
# (or stalling half-way) cannot keep a connection, and the worker's slot, for ever.
REQUEST_TIMEOUT = 60.0
MAX_CONNECTIONS = 1024  # per worker process; further connections wait in the kernel's backlog


def log_access(method: str, path: str, status: int, started: float) -> None:
    """One line per request: never the body, the query or header values (they may be secret)."""
    elapsed = (time.perf_counter() - started) * 1e3
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    with contextlib.suppress(OSError, ValueError):  # a lost log must not cost the answer
        sys.stdout.write(f"{stamp}Z {method} {path} {status} {elapsed:.3f}ms\n")


class Connection:
    """One client connection, served on its own thread until it closes or the server stops."""

    def __init__(self, server: HttpServer, sock: socket.socket) -> None:
        self.server = server
        self.sock = sock
        self.buffer = b""
        self.deadline: float | None = None  # set by a request's first byte
        self.timeout = IDLE_TIMEOUT  # as start_connection set it
        self.busy = False
        self.waiting_since = time.monotonic()  # when it last started waiting for a request
        self.linger = False  # closing after an error: read what the client still sends first

    def serve(self) -> None:
        try:
            while self.serve_one():
                pass
        except (OSError, UnicodeError):
            pass  # the client went away or sent garbage we could not even answer
        except Exception:  # a bug here must cost one connection, never the worker
            traceback.print_exc()
        finally:
            if self.linger:
                self.drain_input()
            with contextlib.suppress(OSError):
                self.sock.close()
            self.server.forget(self)

    def drain_input(self, seconds: float = 2.0, limit: int = 1 << 20) -> None:
        """Half-close, then read (briefly) what the client is still sending: closing a socket
        with unread input resets the connection, and the client could lose our answer."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)
            self.sock.settimeout(seconds)
            deadline, received = time.monotonic() + seconds, 0
            while received < limit and time.monotonic() < deadline:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                received += len(chunk)

    def receive(self) -> bytes:
        """The next bytes from the client, within the request's deadline once it has begun
        (a 408 past it), else within the idle timeout (TimeoutError)."""
        if self.deadline is None:
            self.set_timeout(IDLE_TIMEOUT)
            return self.sock.recv(262144)
        left = self.deadline - time.monotonic()
        if left > 0:
            self.set_timeout(min(IDLE_TIMEOUT, left))
            with contextlib.suppress(TimeoutError):
                return self.sock.recv(262144)
        seconds = self.server.request_timeout
        raise HttpError(408, f"The request did not arrive within {seconds:g} seconds")

    def set_timeout(self, seconds: float) -> None:
        if seconds != self.timeout:  # the common case (idle timeout again) costs nothing
            self.sock.settimeout(seconds)
            self.timeout = seconds

    def start_request(self) -> None:
        if self.deadline is None:
            self.deadline = time.monotonic() + self.server.request_timeout

    def read_more(self) -> bytes:
        chunk = self.receive()
        if not chunk:
            raise ConnectionResetError("client closed the connection")
        return chunk

    def read_head(self) -> bytes | None:
        """The next request's head (without its final empty line), None when the client
        closed or stayed idle before sending one. A head that cannot become a request (random
        bytes, an empty request line) is a 400 as soon as that shows, not a silent close."""
        raw = self.buffer
        while (end := find_head_end(buffer := head_start(raw))) is None:
            check_head_so_far(buffer)
            if buffer:
                self.start_request()
            self.busy = False
            try:
                chunk = self.receive()
            except TimeoutError:
                return None
            if not chunk:
                if buffer:  # the client stopped sending half-way: say so, it may still read
                    raise HttpError(400, "Incomplete request head")
                return None
            self.busy = True
            raw += chunk
        check_head_so_far(buffer[: end[1]])  # as if it had come in pieces: the same answer
        self.start_request()
        self.busy = True
        self.buffer = buffer[end[1] :]
        return buffer[: end[0]]

    def read_exactly(self, length: int) -> bytes:
        while len(self.buffer) < length:
            self.buffer += self.read_more()
        data, self.buffer = self.buffer[:length], self.buffer[length:]
        return data

    def read_line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            if len(self.buffer) > MAX_HEAD_BYTES:
                raise HttpError(400, "Malformed chunked body")
            self.buffer += self.read_more()
        line, self.buffer = self.buffer[:end], self.buffer[end + 2 :]
        return line

    def read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            size_text = self.read_line().split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise HttpError(400, "Malformed chunked body") from None
            if size < 0:
                raise HttpError(400, "Malformed chunked body")
            if size == 0:
                break
            total += size
            if total > limit:
                raise HttpError(413, f"Request body exceeds the limit of {limit} bytes")
            parts.append(self.read_exactly(size))
            if self.read_exactly(2) != b"\r\n":
                raise HttpError(400, "Malformed chunked body")
        while self.read_line():  # trailers, up to the empty line
            pass
        return b"".join(parts)

    def read_body(self, headers: dict[str, str]) -> bytes:
        limit = self.server.max_body_bytes
        encoding = headers.get("transfer-encoding")
        length_text = headers.get("content-length")
        if encoding is not None:
            if length_text is not None or encoding.lower().rsplit(",", 1)[-1].strip() != "chunked":
                raise HttpError(400, "Unsupported Transfer-Encoding")
            self.continue_if_expected(headers)
            return self.read_chunked(limit)
        if length_text is None:
            return b""
        if not length_text.isdigit():
            raise HttpError(400, "Malformed Content-Length")
        length = int(length_text)
        if length > limit:
            raise HttpError(413, f"Request body exceeds the limit of {limit} bytes")
        if length > len(self.buffer):
            self.continue_if_expected(headers)
        return self.read_exactly(length)

    def continue_if_expected(self, headers: dict[str, str]) -> None:
        if headers.get("expect", "").lower() == "100-continue" and not self.buffer:
            self.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")

    def serve_one(self) -> bool:
        """Read one request and answer it; False when the connection should close."""
        method, path, headers = "-", "-", {}
        self.deadline = None  # each request gets its own
        self.waiting_since = time.monotonic()
        try:
            head = self.read_head()
            if head is None:
                return False
            started = time.perf_counter()
            method, target, version, raw = parse_head(head)
            headers = header_map(raw)
            path, _, query = target.partition("?")
            keep_alive = keeps_alive(version, headers)
            body = self.read_body(headers)
            request = Request(method, path, query, version, headers, raw, body)
            response = self.server.app.handle(request)
            keep_alive = keep_alive and not response.close and not self.server.stopping.is_set()
        except HttpError as exc:
            started = time.perf_counter()
            response = self.server.app.reject(headers, exc.status, exc.message)
            keep_alive = False
            self.linger = True
        head_only = method == "HEAD"
        self.sock.sendall(encode_response(response, head_only=head_only, keep_alive=keep_alive))
        log_access(method, path, response.status, started)
        return keep_alive


class HttpServer:
    """Accepts on ``listener`` (possibly shared with other worker processes) until stopped."""

    def __init__(
        self,
        listener: socket.socket,
        app: App,
        *,
        max_body_bytes: int,
        request_timeout: float = REQUEST_TIMEOUT,
        health_listener: socket.socket | None = None,
    ) -> None:
        self.listener = listener
        # A second port for liveness probes, answered by the same application (as azmlinfsrv).
        self.listeners = [listener] if health_listener is None else [listener, health_listener]
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.request_timeout = request_timeout
        self.stopping = threading.Event()
        self.connections: set[Connection] = set()
        self.lock = threading.Lock()
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self.wake_r, self.wake_w = socket.socketpair()

    def stop(self) -> None:
        """Ask :meth:`serve_forever` to stop (safe from a signal handler)."""
        self.stopping.set()
        with contextlib.suppress(OSError):
            self.wake_w.send(b"x")

    def forget(self, connection: Connection) -> None:
        with self.lock:
            self.connections.discard(connection)
        self.slots.release()

    def accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            for listener in self.listeners:
                listener.setblocking(False)
                selector.register(listener, selectors.EVENT_READ)
            selector.register(self.wake_r, selectors.EVENT_READ)
            while not self.stopping.is_set():
                if not self.slots.acquire(timeout=0.5):
                    if selector.select(timeout=0):  # a client waits to connect: make room
                        self.evict_idle()
                    continue
                # A timeout, not a blocking wait: SIGTERM may be delivered to a connection's
                # thread, and Python runs the handler only when the main thread looks up.
                events = selector.select(timeout=0.25)
                if self.stopping.is_set():
                    self.slots.release()
                    break
                ready = [key.fileobj for key, _ in events if key.fileobj is not self.wake_r]
                if not ready:
                    self.slots.release()
                    continue
                try:
                    sock, _ = ready[0].accept()  # type: ignore[union-attr]
                except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                    self.slots.release()  # another worker took it
                    continue
                self.start_connection(sock)
                del events

    def evict_idle(self) -> None:
        """Close the connection that has waited longest for a request (idle, or trickling one
        in): with every slot taken, a new client is served rather than left in the backlog."""
        with self.lock:
            waiting = [c for c in self.connections if not c.busy]
        if waiting:
            oldest = min(waiting, key=lambda c: c.waiting_since)
            with contextlib.suppress(OSError):
                oldest.sock.shutdown(socket.SHUT_RDWR)

    def start_connection(self, sock: socket.socket) -> None:
        sock.setblocking(True)
        sock.settimeout(IDLE_TIMEOUT)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = Connection(self, sock)
        with self.lock:
            self.connections.add(connection)
        threading.Thread(target=connection.serve, daemon=True).start()

    def serve_forever(self, grace: float = 30.0) -> None:
        """Serve until :meth:`stop`; then finish in-flight requests (at most ``grace`` seconds)."""
        try:
            self.accept_loop()
        finally:
            for listener in self.listeners:
                listener.close()
            self.drain(grace)

    def drain(self, grace: float, clock: Callable[[], float] = time.monotonic) -> None:
        """Finish what is in flight. A connection with no request under way gets STOP_LINGER
        seconds to send one (it is answered, with ``Connection: close``) before it is closed:
        a client that connected, or reused a keep-alive connection, just as an update stopped
        this worker is served rather than reset."""
        started = clock()
        deadline = started + grace
        while clock() < deadline:
            with self.lock:
                remaining = list(self.connections)
            if not remaining:
                return
            if clock() - started >= STOP_LINGER:
                for connection in remaining:
                    if not connection.busy:  # still idle: wake its recv() so the thread ends
                        with contextlib.suppress(OSError):
                            connection.sock.shutdown(socket.SHUT_RDWR)
            time.sleep(0.02)
