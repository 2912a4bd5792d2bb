"""Processes behind runs and deployments: starting a detached watcher or supervisor, telling
whether it is still alive, following a log another process appends to. (A local run's process
group is stopped by the local compute target, ``kiln.compute.local``.)"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import IO


def _start_time(pid: int) -> str:
    """The kernel's start time of ``pid`` (clock ticks since boot), to tell a reused pid apart;
    "dead" for a zombie (a watcher killed while its parent, say a notebook, has not reaped it),
    empty where /proc does not exist."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return ""
    return "dead" if fields[0] == "Z" else fields[19]


def watcher_token(pid: int | None = None) -> str:
    pid = pid or os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_time(pid)}"


def pid_of(token: str | None) -> int | None:
    """The process id in a watcher token ("HOST:PID:START")."""
    parts = (token or "").split(":")
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def host_of(token: str | None) -> str:
    return (token or "").split(":")[0]


def watched_elsewhere(token: str | None) -> bool:
    """Whether the watcher is on another machine (a team server's run): this one's signals
    cannot reach what it started."""
    return bool(token) and host_of(token) != socket.gethostname()


def watcher_alive(token: str | None) -> bool | None:
    """True or False for a watcher on this machine; None when it runs elsewhere (unknowable)."""
    if not token:
        return False
    host, _, rest = token.partition(":")
    pid_text, _, started = rest.partition(":")
    if host != socket.gethostname():
        return None
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, someone else's
    return _start_time(pid) == started


def spawn_detached(argv: list[str], log: Path) -> str:
    """Start ``argv`` in a session of its own (it outlives this process and its terminal),
    output appended to ``log``; returns its watcher token."""
    import subprocess

    with log.open("ab") as out:
        child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    return watcher_token(child.pid)


def copy_new_bytes(path: Path, offset: int, echo: IO[bytes]) -> int:
    """Write what ``path`` gained since ``offset`` to ``echo``; returns the new offset (for
    following a log that another process appends to)."""
    if not path.exists():
        return offset
    with path.open("rb") as handle:
        handle.seek(offset)
        while chunk := handle.read(1 << 16):
            echo.write(chunk)
            offset += len(chunk)
    echo.flush()
    return offset
