"""HTTP/1.1 messages for the scoring runtime: the request and response values, the request
head parser (strict: anything malformed is a 400, never a crash) and the response encoder.

Standard library only: this runs on the user environment's interpreter.
"""

from __future__ import annotations

import re
import time
from email.utils import formatdate
from http import HTTPStatus
from typing import NamedTuple, Protocol

MAX_HEAD_BYTES = 64 * 1024
MAX_REQUEST_LINE = 8 * 1024
MAX_HEADERS = 100


class Request(NamedTuple):
    method: str
    path: str  # percent-decoded, slashes merged, no query
    query: str
    version: str
    headers: dict[str, str]  # lower-case name -> value (repeated headers joined by ",")
    raw_headers: list[tuple[str, str]]  # as sent
    body: bytes


class Response(NamedTuple):
    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: list[tuple[str, str]] = []  # noqa: RUF012 (never mutated: _replace copies)
    close: bool = False  # close the connection after this response


class App(Protocol):
    def handle(self, request: Request) -> Response: ...

    def reject(self, headers: dict[str, str], status: int, message: str) -> Response: ...


class HttpError(Exception):
    """A request this server refuses before the application sees it (then it closes)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers: dict[str, str] = {}


_PHRASES = {s.value: s.phrase for s in HTTPStatus}
_date_cache: tuple[int, str] = (0, "")


def http_date() -> str:
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True))
    return _date_cache[1]


def encode_response(response: Response, *, head_only: bool, keep_alive: bool) -> bytes:
    status, body = response.status, response.body
    lines = [
        f"HTTP/1.1 {status} {_PHRASES.get(status, 'Unknown')}",
        "Server: kiln",
        f"Date: {http_date()}",
        f"Content-Length: {len(body)}",
    ]
    if response.content_type:
        lines.append(f"Content-Type: {response.content_type}")
    if not keep_alive:
        lines.append("Connection: close")
    lines.extend(f"{name}: {value}" for name, value in response.headers)
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head if head_only else head + body


# The empty line that ends a head. RFC 9112 (2.2) lets a recipient accept a bare LF as a line
# terminator; curl, h11 and azmlinfsrv do, so a head written with LF only is a request too.
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_REQUEST_LINE_CONTROL = re.compile(rb"[\x00-\x1f\x7f]")  # CTLs: only SP separates its parts


def head_start(buffer: bytes) -> bytes:
    """``buffer`` without the one empty line a client may send before a request (RFC 9112
    2.2: some send a CRLF after a body); a second one is an empty request line (400)."""
    for empty in (b"\r\n", b"\n"):
        if buffer.startswith(empty):
            buffer = buffer[len(empty) :]
            break
    if buffer.startswith((b"\n", b"\r\n")):
        raise HttpError(400, "Empty request line")
    return buffer


def find_head_end(buffer: bytes) -> tuple[int, int] | None:
    """(where the head ends, where the body begins), or None before its empty line arrived."""
    found = _HEAD_END.search(buffer)
    return None if found is None else (found.start(), found.end())


def check_head_so_far(buffer: bytes) -> None:
    """A 400, 414 or 431 as soon as the head received so far cannot become a valid one: random
    bytes are answered at once instead of waiting for an empty line that never comes. When
    several faults show, the one its earliest byte proves wins, so the answer follows from the
    bytes and not from how the network cut them into pieces (a CI run once got a 414 for
    bytes that usually get a 431)."""
    # without the CR of its CRLF (whose LF may not have arrived yet)
    line = buffer.partition(b"\n")[0].removesuffix(b"\r")
    faults = []  # (the offset of the byte that proves it, status, message)
    if line.startswith(b" "):
        faults.append((0, 400, "Malformed request line"))
    elif control := _REQUEST_LINE_CONTROL.search(line):
        faults.append((control.start(), 400, "Malformed request line"))
    if len(line) > MAX_REQUEST_LINE:
        faults.append((MAX_REQUEST_LINE, 414, "Request line is too long"))
    if len(buffer) > MAX_HEAD_BYTES:
        faults.append((MAX_HEAD_BYTES, 431, "Request header fields too large"))
    if faults:
        _, status, message = min(faults)
        raise HttpError(status, message)


def parse_head(head: bytes) -> tuple[str, str, str, list[tuple[str, str]]]:
    """Request line and headers; raises :class:`HttpError` (400/414/431/505) on bad input.
    Lines end with CRLF or a bare LF; a CR elsewhere stays in the value (the application
    refuses control characters in the values it echoes)."""
    request_line, *header_lines = (_without_cr(line) for line in head.split(b"\n"))
    if len(request_line) > MAX_REQUEST_LINE:
        raise HttpError(414, "Request line is too long")
    parts = request_line.decode("latin-1").split(" ")
    if (
        len(parts) != 3
        or not parts[0].isalpha()
        or not parts[1]
        or _REQUEST_LINE_CONTROL.search(request_line)
    ):
        raise HttpError(400, "Malformed request line")
    method, target, version = parts
    if version not in ("HTTP/1.1", "HTTP/1.0"):
        raise HttpError(505, "Only HTTP/1.0 and HTTP/1.1 are supported")
    if len(header_lines) > MAX_HEADERS:
        raise HttpError(431, "Too many request headers")
    headers = []
    for line in header_lines:
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip() or line[:1] in (b" ", b"\t"):
            raise HttpError(400, "Malformed request header")
        headers.append((name.decode("latin-1"), value.strip().decode("latin-1")))
    return method, target, version, headers


def _without_cr(line: bytes) -> bytes:
    return line[:-1] if line.endswith(b"\r") else line


def header_map(raw: list[tuple[str, str]]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in raw:
        key = name.lower()
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    return headers


def keeps_alive(version: str, headers: dict[str, str]) -> bool:
    tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
    if version == "HTTP/1.1":
        return "close" not in tokens
    return "keep-alive" in tokens
