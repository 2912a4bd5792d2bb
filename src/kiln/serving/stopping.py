"""Stopping a deployment's service on this machine: its supervisor, then whatever of its
process group outlives it (workers, and what they started), by signals that escalate."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from kiln.runs import processes

ORPHAN_GRACE_SECONDS = 5.0  # for what outlives the supervisor to finish, after SIGTERM, and
# for the kernel to end what SIGKILL hit (never longer than the caller's timeout)


def stop_service(
    supervisor: str | None,
    *,
    timeout: float,
    send: Callable[[int, int], None] = os.kill,
) -> list[int]:
    """Stop a supervisor on this machine and every process of its process group (its workers
    and whatever they started): SIGTERM, ``timeout`` for it to stop its workers, then SIGTERM
    and SIGKILL for what is left. Returns the pids still running after all that."""
    pgid = processes.pid_of(supervisor)
    if pgid is None or processes.watcher_alive(supervisor) is None:
        return []
    if processes.watcher_alive(supervisor):
        _send(send, [pgid], signal.SIGTERM)
        _wait_until(lambda: not processes.watcher_alive(supervisor), timeout)
    grace = min(timeout, ORPHAN_GRACE_SECONDS)
    for signum in (signal.SIGTERM, signal.SIGKILL):
        left = _group_members(pgid, supervisor)
        if not left:
            return []
        _send(send, left, signum)
        _wait_until(lambda: not _group_members(pgid, supervisor), grace)
    return _group_members(pgid, supervisor)


def _send(send: Callable[[int, int], None], pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            send(pid, signum)


def _wait_until(done: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        time.sleep(0.05)


def _group_members(pgid: int, supervisor: str | None) -> list[int]:
    """The live (not zombie) processes of the supervisor's process group. The supervisor leads
    a session of its own, so its workers share its pid as their group id; the kernel does not
    reuse that number while any of them lives. Processes started before the supervisor, or a
    new leader under the same pid, are someone else's."""
    if not Path("/proc").is_dir():  # no way to list them: the supervisor alone
        return [pgid] if processes.watcher_alive(supervisor) else []
    start_text = (supervisor or "").rsplit(":", 1)[-1]
    started = int(start_text) if start_text.isdigit() else 0
    members: dict[int, int] = {}
    # Not pathlib's glob: it stats each match, which raises ESRCH when the process ends between
    # the listing and the check (iterdir does not stat).
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # ended meanwhile
        if fields[0] != "Z" and int(fields[2]) == pgid:
            members[int(entry.name)] = int(fields[19])
    if pgid in members and members[pgid] != started:
        return []  # the supervisor's pid now leads another group
    return sorted(pid for pid, start in members.items() if start >= started)
