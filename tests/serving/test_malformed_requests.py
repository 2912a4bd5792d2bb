"""Requests that are not HTTP (issue 15, item 11): random bytes, an empty request line and a
head cut short used to get the connection closed without an answer, after a 30 s wait; LF-only
line endings were never answered. Now, over a real socket against a real runtime, each gets a
400 at once (as h11 and azmlinfsrv answer), and a head written with bare LFs is served: RFC 9112
lets a recipient accept them, and curl, h11 and azmlinfsrv do."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator

import pytest

from kilntesting.serving import Runtime, raw_http, send, start_runtime, write_score

SCORE = """\
def init():
    pass


def run(raw_data):
    return {"raw": raw_data}
"""
QUICK = 5.0  # seconds: far below the 30 s idle timeout that used to end these connections


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    root = tmp_path_factory.mktemp("malformed")
    runtime = start_runtime(write_score(root / "app", SCORE), log_dir=root / "log")
    assert runtime.ready, runtime.log()
    yield runtime
    assert runtime.stop() == 0


def status_of(answer: bytes) -> bytes:
    return answer.partition(b"\r\n")[0][:12]


def random_bytes(seed: int) -> bytes:
    """Bytes that are not a request: a letter-free first byte keeps them from ever being one."""
    rng = random.Random(seed)
    return bytes([rng.randrange(0x80, 0x100)]) + rng.randbytes(199).replace(b"\n", b"x")


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes_get_a_400_at_once(server: Runtime, seed: int) -> None:
    answer = raw_http(server.port, random_bytes(seed), timeout=QUICK)
    assert status_of(answer) == b"HTTP/1.1 400", answer[:200]
    assert b"Malformed request line" in answer


@pytest.mark.parametrize(
    "data",
    [b"\r\n\r\n", b"\n\n", b"\r\n\r\nGET / HTTP/1.1\r\n\r\n", b" / HTTP/1.1\r\n\r\n"],
    ids=["crlf", "lf", "before-a-request", "no-method"],
)
def test_an_empty_request_line_gets_a_400(server: Runtime, data: bytes) -> None:
    answer = raw_http(server.port, data, timeout=QUICK)
    assert status_of(answer) == b"HTTP/1.1 400", answer[:200]


def test_a_head_cut_short_by_the_client_gets_a_400(server: Runtime) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=QUICK) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        sock.shutdown(socket.SHUT_WR)
        answer = b"".join(iter(lambda: sock.recv(65536), b""))
    assert status_of(answer) == b"HTTP/1.1 400", answer[:200]
    assert b"Incomplete request head" in answer


@pytest.mark.parametrize(
    "data",
    [
        b"POST /score HTTP/1.1\nHost: x\nContent-Length: 5\nConnection: close\n\nhello",
        b"POST /score HTTP/1.1\r\nHost: x\nContent-Length: 5\r\nConnection: close\n\r\nhello",
        b"\r\nPOST /score HTTP/1.1\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
    ],
    ids=["lf-only", "mixed", "one-empty-line-first"],
)
def test_lf_line_endings_and_one_leading_empty_line_are_served(
    server: Runtime, data: bytes
) -> None:
    answer = raw_http(server.port, data, timeout=QUICK)
    assert status_of(answer) == b"HTTP/1.1 200", answer[:200]
    assert answer.endswith(b'{"raw": "hello"}')


def test_lf_only_requests_keep_alive_and_pipeline(server: Runtime) -> None:
    one = b"GET / HTTP/1.1\nHost: x\n\n"
    answer = raw_http(server.port, one + one + b"GET / HTTP/1.1\nConnection: close\n\n")
    assert answer.count(b"HTTP/1.1 200 OK") == 3


def test_the_worker_serves_on_after_every_malformed_request(server: Runtime) -> None:
    for seed in range(20):
        raw_http(server.port, random_bytes(100 + seed), timeout=QUICK)
    assert send(server.port, "GET", "/").status == 200
