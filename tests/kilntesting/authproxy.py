"""A reverse proxy on 127.0.0.1 that requires HTTP basic auth, in front of a real server (the
test Ray dashboard): how a Ray cluster is usually exposed beyond its own network.

Each connection's first request must carry ``Authorization: Basic user:password``, or it gets
a 401 and the connection is closed; after that the bytes are passed through both ways, so
keep-alive requests, uploads and websockets (Ray's log tail) all work. The first line of every
request head the proxy accepted or refused is kept in ``accepted`` / ``refused``.
"""

from __future__ import annotations

import base64
import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

_UNAUTHORIZED = (
    b'HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm="kiln-tests"\r\n'
    b"Content-Length: 0\r\nConnection: close\r\n\r\n"
)


@dataclass
class AuthProxy:
    port: int
    accepted: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def _head(connection: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 65536:
        chunk = connection.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def _authorization(head: bytes) -> str | None:
    for line in head.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"authorization":
            return value.strip().decode("latin-1")
    return None


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


def _serve(client: socket.socket, upstream: int, expected: str, proxy: AuthProxy) -> None:
    with client:
        head = _head(client)
        first = head.split(b"\r\n", 1)[0].decode("latin-1")
        if _authorization(head) != expected:
            proxy.refused.append(first)
            client.sendall(_UNAUTHORIZED)
            return
        proxy.accepted.append(first)
        with socket.create_connection(("127.0.0.1", upstream)) as server:
            server.sendall(head)
            back = threading.Thread(target=_pump, args=(server, client), daemon=True)
            back.start()
            _pump(client, server)
            back.join()


@contextlib.contextmanager
def basic_auth_proxy(upstream: int, user: str, password: str) -> Iterator[AuthProxy]:
    """A proxy to ``127.0.0.1:upstream`` that wants ``user:password``, until the block ends."""
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    listener = socket.create_server(("127.0.0.1", 0))
    proxy = AuthProxy(listener.getsockname()[1])

    def accept() -> None:
        with contextlib.suppress(OSError):  # the listener was closed: the block ended
            while True:
                client, _ = listener.accept()
                threading.Thread(
                    target=_serve, args=(client, upstream, expected, proxy), daemon=True
                ).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield proxy
    finally:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        listener.close()
