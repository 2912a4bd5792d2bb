"""A build lease: machines sharing a registry build one materialization once.

A build takes the registry's lease on (build hash, platform, builder) just before it does work
that another machine could be doing at the same time and would share (resolving a lock,
building an image it pushes), and holds it until it ends, success or failure. A second machine that asks meanwhile
waits, saying for whom, and then finds the first one's result by the checks it makes anyway:
the stored lock (so it installs that lock, with no resolution of its own) or the image in the
workspace's registry (so it pulls it). A thread renews the lease while the build runs; a
builder that dies stops renewing, and the next one takes the lease over once it has expired
(at once when the dead builder ran on the same host).

Taken on SQLite too: it costs one insert and one delete per cold build, and one code path is
what the tests prove on both databases. Expiry compares the holders' clocks, so machines
sharing a registry should agree on the time to within a small part of the lease's length. The
lease rows live in a ``LeaseBook``: the registry's table, or for a workspace on a team server
the server's (kiln.remoteleases), where the server's clock is the one every client compares.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any, Protocol

from kiln.cache import process_alive
from kiln.errors import WorkspaceError
from kiln.registry.engine import write_transaction
from kiln.registry.lease_queries import (
    Holder,
    LeaseKey,
    get_lease,
    insert_lease,
    release_lease,
    renew_lease,
    take_over_lease,
)

if TYPE_CHECKING:
    from kiln.buildlog import BuildLog
    from kiln.workspace import Workspace


class LeaseBook(Protocol):
    """Where leases are kept. Each write is one atomic statement that says whether it won."""

    def current(self, key: LeaseKey) -> dict[str, Any] | None:
        """The lease row, with ``now``: the book's clock when it was read."""
        ...

    def insert(self, key: LeaseKey, holder: Holder, seconds: float) -> bool: ...

    def take_over(self, key: LeaseKey, holder: Holder, previous: str, seconds: float) -> bool: ...

    def renew(self, key: LeaseKey, holder: str, seconds: float) -> bool: ...

    def release(self, key: LeaseKey, holder: str) -> None: ...


class RegistryLeases:
    """The registry's ``build_leases`` table, on this machine's clock."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def current(self, key: LeaseKey) -> dict[str, Any] | None:
        with self.workspace.engine.connect() as connection:
            row = get_lease(connection, key=key)
        return None if row is None else {**row, "now": time.time()}

    def insert(self, key: LeaseKey, holder: Holder, seconds: float) -> bool:
        with write_transaction(self.workspace.engine) as connection:
            return insert_lease(
                connection, key=key, holder=holder, now=time.time(), seconds=seconds
            )

    def take_over(self, key: LeaseKey, holder: Holder, previous: str, seconds: float) -> bool:
        with write_transaction(self.workspace.engine) as connection:
            return take_over_lease(
                connection,
                key=key,
                holder=holder,
                previous=previous,
                now=time.time(),
                seconds=seconds,
            )

    def renew(self, key: LeaseKey, holder: str, seconds: float) -> bool:
        with write_transaction(self.workspace.engine) as connection:
            return renew_lease(connection, key=key, holder=holder, now=time.time(), seconds=seconds)

    def release(self, key: LeaseKey, holder: str) -> None:
        with write_transaction(self.workspace.engine) as connection:
            release_lease(connection, key=key, holder=holder)


def lease_book(workspace: Workspace) -> LeaseBook:
    if workspace.server_url is not None:
        from kiln.remoteleases import ServerLeases

        return ServerLeases(workspace)
    return RegistryLeases(workspace)


SECONDS_VARIABLE = "KILN_BUILD_LEASE_SECONDS"
DEFAULT_SECONDS = 60.0


def lease_seconds() -> float:
    """How long a lease lasts unless renewed: ``KILN_BUILD_LEASE_SECONDS`` (default 60)."""
    text = os.environ.get(SECONDS_VARIABLE)
    if not text:
        return DEFAULT_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds >= 1:  # also refuses nan
        raise WorkspaceError(
            f"{SECONDS_VARIABLE}={text!r} is not a number of seconds of at least 1; "
            f"unset it for the default ({DEFAULT_SECONDS:.0f})"
        )
    return seconds


def _alive_here(host: str, pid: int) -> bool:
    """False only for a process known to be gone: one of this host that no longer exists."""
    return host != socket.gethostname() or process_alive(pid)


def _clock(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%H:%M:%S UTC")


class BuildLease:
    """The lease of one build attempt: ``take`` (idempotent, waits), then ``release``."""

    def __init__(self, workspace: Workspace, key: LeaseKey, building: str, log: BuildLog) -> None:
        self.book, self.key, self.log = lease_book(workspace), key, log
        self.seconds = lease_seconds()
        self.holder = Holder(uuid.uuid4().hex, socket.gethostname(), os.getpid(), building)
        self.held = False
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def take(self) -> None:
        """Hold the lease, first waiting for whoever builds the same thing elsewhere."""
        if self.held:
            return
        waited_for: dict[str, Any] | None = None
        started = time.monotonic()
        poll = min(0.5, self.seconds / 4)
        while not self._try_take():
            row = self.book.current(self.key)
            if row is not None and row["holder"] != (waited_for or {}).get("holder"):
                self._say_waiting(row)  # once per holder
                waited_for = row
            time.sleep(poll)
        if waited_for is not None:
            self.log.write(
                f"==> waited {time.monotonic() - started:.1f} s for {waited_for['host']} pid "
                f"{waited_for['pid']}; reusing what it made, if it made it\n"
            )
        self.held = True
        self._renewer = threading.Thread(target=self._renew, name="kiln-build-lease", daemon=True)
        self._renewer.start()

    def release(self) -> None:
        if not self.held:
            return
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        self.held = False
        self.book.release(self.key, self.holder.holder)

    def _try_take(self) -> bool:
        """One attempt: take the free lease, or the one of a builder that died."""
        row = self.book.current(self.key)
        if (
            row is not None
            and row["expires_at"] >= row["now"]
            and _alive_here(row["host"], row["pid"])
        ):
            return False  # read first: waiting takes no write lock
        if row is None:
            return self.book.insert(self.key, self.holder, self.seconds)
        return self.book.take_over(self.key, self.holder, row["holder"], self.seconds)

    def _say_waiting(self, row: dict[str, Any]) -> None:
        builder, platform = self.key.builder, self.key.platform
        text = (
            f"waiting for {row['host']} pid {row['pid']}, which is building {row['building']} "
            f"({builder}, {platform}) since {_clock(row['taken_at'])}"
        )
        self.log.write(f"==> {text}\n")
        self.log.reporter.message(text)

    def _renew(self) -> None:
        """Every third of the lease's length until released. A renewal that fails (the
        database or the server away for a moment) is tried again at the next beat; a lease taken
        over meanwhile is said once, and the build goes on (the result is the same either way)."""
        said = False
        while not self._stop.wait(self.seconds / 3):
            try:
                ours = self.book.renew(self.key, self.holder.holder, self.seconds)
            except Exception:  # any database or network fault: try again at the next beat
                continue
            if not ours and not said:
                said = True
                self.log.reporter.message(
                    "this build's lease expired and another builder took it over; "
                    "building on (both builds give the same result)"
                )
