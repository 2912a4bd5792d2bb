"""Server-sent events that follow a growing log: each new complete line is an event, and an
``end`` event closes the stream once the writer is done (or after ``limit`` seconds)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

POLL = 0.25


def follow_lines(
    log: Callable[[], Path | None], done: Callable[[], bool], *, limit: float = 3600.0
) -> Iterator[str]:
    """``log`` names the file now (None: not there yet); ``done`` says the writer finished.
    ``done`` is asked before the file is read: what it wrote last is in by then."""
    offset, deadline = 0, time.monotonic() + limit
    while time.monotonic() < deadline:
        finished = done()
        path = log()
        if path is not None and path.exists():
            with path.open("rb") as source:
                source.seek(offset)
                chunk = source.read()
            complete = chunk[: chunk.rfind(b"\n") + 1] if not finished else chunk
            offset += len(complete)
            for line in complete.decode("utf-8", errors="replace").splitlines():
                yield f"data: {line}\n\n"
        if finished:
            break
        time.sleep(POLL)
    yield "event: end\ndata: \n\n"
