"""Processes behind runs and deployments: starting a detached watcher or supervisor, telling
whether it is still alive, and stopping a run's process group without ever touching a process
that is not the run's."""

from __future__ import annotations

import os
import signal
import socket
import time
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


def _group_members(pgid: int, run_id: str) -> list[int]:
    """Live processes of group ``pgid`` that carry this run's KILN_RUN_ID: a process group id
    the kernel has since given to somebody else is never signalled."""
    marker = f"KILN_RUN_ID={run_id}".encode()
    members = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else []:
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                members.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    return members


def group_alive(pgid: int, run_id: str) -> bool:
    if not Path("/proc").is_dir():  # pragma: no cover - not Linux: trust the group id
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    return bool(_group_members(pgid, run_id))


def signal_group(pgid: int, run_id: str, signum: int) -> bool:
    if not group_alive(pgid, run_id):
        return False
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    return True


def stop_group(pgid: int, run_id: str, grace: float) -> None:
    """SIGTERM to the run's process group, then SIGKILL once ``grace`` seconds have passed."""
    if not signal_group(pgid, run_id, signal.SIGTERM):
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not group_alive(pgid, run_id):
            return
        time.sleep(0.05)
    signal_group(pgid, run_id, signal.SIGKILL)


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
