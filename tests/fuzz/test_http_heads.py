"""The scoring runtime's request heads, fuzzed. The parser (standard library only, it runs in
the user's environment) answers any bytes with a request or an ``HttpError`` whose status is a
4xx/5xx the server sends back, never another exception; it never refuses a prefix of a valid
request early; and a real runtime, sent any bytes over a socket, answers with an HTTP status
line (or nothing, when a complete head announced a body that never came), logs no traceback
and keeps serving."""

from __future__ import annotations

import itertools
import socket
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kiln.serving.runtime_protocol import (
    HttpError,
    check_head_so_far,
    find_head_end,
    head_start,
    header_map,
    keeps_alive,
    parse_head,
)
from kilntesting.serving import Runtime, send, start_runtime, write_score

FUZZ = settings.get_profile("kiln-fuzz")
STATUSES = {400, 408, 413, 414, 431, 505}
SCORE = "def init():\n    pass\n\n\ndef run(raw_data):\n    return {'raw': raw_data}\n"

TOKEN = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-!#$%&'*+.^_`|~", min_size=1, max_size=12)  # fmt: skip
VALUE = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E) | st.just(" "), max_size=20).map(str.strip)  # fmt: skip
TARGET = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=30).map(lambda t: "/" + t)  # fmt: skip


@st.composite
def valid_heads(draw: st.DrawFn) -> bytes:
    """A well-formed head, its lines ended by CRLF or by a bare LF (RFC 9112 2.2)."""
    method = draw(st.sampled_from(["GET", "POST", "HEAD", "OPTIONS", "PUT", "PATCH"]))
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.0"]))
    lines = [f"{method} {draw(TARGET)} {version}"]
    lines += [f"{n}: {v}" for n, v in draw(st.lists(st.tuples(TOKEN, VALUE), max_size=6))]
    ends = draw(st.lists(st.sampled_from(["\r\n", "\n"]), min_size=len(lines) + 1, max_size=len(lines) + 1))  # fmt: skip
    return "".join(line + end for line, end in zip([*lines, ""], ends, strict=True)).encode(
        "latin-1"
    )


def near_http(head: bytes, edits: list[tuple[int, bytes]]) -> bytes:
    for at, insert in edits:
        at %= len(head) + 1
        head = head[:at] + insert + head[at + len(insert) :]
    return head


SPLICES = st.sampled_from([b"\r", b"\n", b"\x00", b" ", b":", b"\r\n\r\n", b"\xff", b"HTTP/9.9"])
EDITS = st.lists(st.tuples(st.integers(0, 400), SPLICES | st.binary(max_size=3)), max_size=3)
BYTES = st.one_of(
    st.binary(max_size=300), st.builds(near_http, valid_heads(), EDITS), valid_heads()
)


def parse(data: bytes) -> bool:
    """What the server does with the bytes it has: True for a head, False to wait for more."""
    buffer = head_start(data)
    end = find_head_end(buffer)
    if end is None:
        check_head_so_far(buffer)
        return False
    check_head_so_far(buffer[: end[1]])
    method, target, version, raw = parse_head(buffer[: end[0]])
    keeps_alive(version, header_map(raw))
    assert method and target and version in ("HTTP/1.1", "HTTP/1.0")
    return True


def outcome(pieces: list[bytes]) -> int | str:
    """The server's answer to bytes that arrive in these pieces: an error status, "request"
    once a head is whole, or "waiting"."""
    received = b""
    for piece in pieces:
        received += piece
        try:
            if parse(received):
                return "request"
        except HttpError as exc:
            return exc.status
    return "waiting"


# Long runs of one byte reach the request line's and the head's limits (414, 431).
LONG = st.builds(
    lambda before, filler, count, after: before + filler * count + after,
    BYTES,
    st.sampled_from([b"a", b" ", b"\x00", b"b: c\r\n"]),
    st.sampled_from([0, 8200, 11000, 66000]),
    BYTES,
)


@FUZZ
@given(BYTES)
def test_any_bytes_are_a_request_or_an_http_error(data: bytes) -> None:
    try:
        parse(data)
    except HttpError as exc:
        assert exc.status in STATUSES, exc.status
        assert exc.message and "\n" not in exc.message


@FUZZ
@given(valid_heads())
def test_a_valid_head_and_every_prefix_of_it_are_never_refused(head: bytes) -> None:
    parse(head)
    for cut in range(len(head)):
        buffer = head_start(head[:cut])
        if find_head_end(buffer) is None:
            check_head_so_far(buffer)


@FUZZ
@given(st.one_of(BYTES, LONG), st.lists(st.integers(0, 80000), max_size=6))
def test_the_answer_does_not_depend_on_where_the_bytes_are_cut(
    data: bytes, cuts: list[int]
) -> None:
    edges = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    pieces = [data[a:b] for a, b in itertools.pairwise(edges)]
    assert outcome(pieces) == outcome([data])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    root = tmp_path_factory.mktemp("fuzz-runtime")
    runtime = start_runtime(
        write_score(root / "app", SCORE), "--max-body-bytes", "1000", log_dir=root / "log"
    )
    assert runtime.ready, runtime.log()
    yield runtime
    assert send(runtime.port, "GET", "/").status == 200
    assert runtime.stop() == 0
    assert "Traceback" not in runtime.log(), runtime.log()[-3000:]


def exchange(port: int, data: bytes) -> bytes:
    """Send ``data``, half-close, and read every byte of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
        return b"".join(chunks)


@settings(FUZZ, max_examples=max(20, FUZZ.max_examples // 3))
@given(BYTES)
def test_a_real_runtime_answers_any_bytes_and_serves_on(server: Runtime, data: bytes) -> None:
    answer = exchange(server.port, data)
    if answer:
        assert answer.startswith(b"HTTP/1.1 "), answer[:100]
        assert int(answer[9:12]) in {200, 204, 404, 405, *STATUSES}, answer[:100]
