"""The first lock of a build on the standard-library path (kiln.fastbuild): resolved against
the index and stored as generation 1, as buildlocks.resolve_lock does, with a guess of it from
uv's cached index pages that the build may install meanwhile.

Why the guess: ``uv pip compile`` asks the index for its pages again (0.2-0.3 s for numpy,
pandas and scikit-learn here), and a build can only install a lock after it, where raw ``uv pip
install`` resolves and installs in one pass. With uv's cache warm, the same resolution from the
cached pages alone (``--offline``) takes about 0.03 s and nearly always gives the same lock. So
the build installs that guess (``uv pip sync --require-hashes``, as for any lock) while the index
is asked (after the guess, not beside it: see FirstLock), and keeps it only when the index gave
exactly the same lock text: the stored lock is always the index's answer, and what is installed
is always that lock's files, hashes checked.
A guess the index contradicts (a new release, a yanked file) is thrown away and the build starts
again from the stored lock; a resolution that fails fails the build, as ever. Without a warm
cache the guess fails at once and the build waits for the index, as before.

The caller holds the cache's file lock of the resolution, as the full path does, but not the
registry's lease: an embedded registry is one machine's SQLite file, so that file lock already
makes one process resolve while the others wait and then read its lock.
"""

from __future__ import annotations

import threading

from kiln.builders import venv
from kiln.builders.base import BuildContext, Lock, Log
from kiln.errors import KilnError
from kiln.fastplan import Plan, pip_index, resolution_name
from kiln.registry import fastbuilds
from kiln.registry.lockrow import LockRow, lock_digest
from kiln.registry.readonly import immediate_transaction


class _Buffer:
    """A log for a resolution running beside the build: held until ``go_live``, so its lines
    do not interleave with the build's; from then on (the build waits for it) written, and
    its details shown, as they come."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self._live: Log | None = None
        self._latest_detail: str | None = None  # shown on going live: uv may be mid-download
        self._guard = threading.Lock()

    def phase(self, name: str) -> None:
        pass

    def detail(self, text: str) -> None:
        with self._guard:
            if self._live is not None:
                self._live.detail(text)
            else:
                self._latest_detail = text

    def write(self, text: str) -> None:
        with self._guard:
            if self._live is not None:
                self._live.write(text)
            else:
                self.parts.append(text)

    def go_live(self, log: Log) -> None:
        with self._guard:
            if self._live is None:
                log.write("".join(self.parts))
                self.parts.clear()
                if self._latest_detail is not None:
                    log.detail(self._latest_detail)
                self._live = log


class FirstLock:
    """The resolution of ``plan``'s first lock, started against the index in a thread, and
    ``guess``: uv's answer from its cached pages alone, or None when they do not answer."""

    def __init__(self, plan: Plan, log: Log) -> None:
        self.plan = plan
        self.name = resolution_name(plan.version, plan.target)
        self._buffer = _Buffer()
        self._lock: Lock | None = None
        self._error: BaseException | None = None
        self._row: LockRow | None = None
        self._remembered = False
        # The guess first, then the index: run side by side, the two uv processes share the
        # cache, so the guess could wait on uv's lock of a file the index's resolution is
        # downloading, or read the page it has just refreshed (~0.03 s later start, no race).
        self.guess = self._guess(log)
        self._thread = threading.Thread(target=self._ask_the_index, name="kiln-resolve")
        self._thread.daemon = True  # an interrupted build does not wait for the index
        self._thread.start()
        if self.guess is None:  # the build waits for the index: show what uv does meanwhile
            self._buffer.go_live(log)

    def _resolve(self, log: Log, *, offline: bool) -> Lock:
        plan = self.plan
        return venv.resolve_pip(
            list(plan.pip.get("packages", [])),
            list(plan.pip.get("constraints", [])),
            pip_index(plan.pip),
            plan.target,
            BuildContext(log, plan.cache.uv_cache, {}),
            offline=offline,
        )

    def _ask_the_index(self) -> None:
        try:
            self._lock = self._resolve(self._buffer, offline=False)
        except BaseException as exc:  # raised again by row(), in the build's thread
            self._error = exc

    def _guess(self, log: Log) -> Lock | None:
        """uv's offline answer, its output written to ``log`` only when there is one."""
        said = _Buffer()
        try:
            guess = self._resolve(said, offline=True)
        except KilnError:
            return None
        log.write("".join(said.parts))
        return guess

    def row(self, log: Log) -> LockRow:
        """The index's resolution, stored (once), its uv output written to ``log`` first. A
        failure is remembered under the resolution's name, as the full path does, and
        raised."""
        if self._row is not None:
            return self._row
        self._buffer.go_live(log)
        self._thread.join()
        if self._error is not None:
            if isinstance(self._error, KilnError) and not self._remembered:
                self.plan.cache.remember_failure(self.name, str(self._error), None)
                self._remembered = True
            raise self._error
        assert self._lock is not None
        self.plan.cache.forget_failure(self.name)
        self._row = _store(self.plan, self._lock)
        return self._row


def _store(plan: Plan, lock: Lock) -> LockRow:
    """Generation 1 of the plan's build and platform (another process's, when it stored one
    first)."""
    version, target = plan.version, plan.target
    with immediate_transaction(plan.connection) as connection:
        fastbuilds.insert_lock(
            connection,
            build_hash=version.build_hash,
            platform=target.platform,
            generation=1,
            lock_digest=lock_digest(lock.text),
            lock_format=lock.format,
            lock_text=lock.text,
            packages=lock.packages,
            resolver=lock.resolver,
        )
    row = fastbuilds.newest_lock(
        plan.connection, build_hash=version.build_hash, platform=target.platform
    )
    assert row is not None
    return row
