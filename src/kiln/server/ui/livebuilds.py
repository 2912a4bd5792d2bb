"""Builds started from the UI (the Rebuild button) and their live log.

The build runs in a thread of the server process through the core's ``ensure_built``, with a
reporter that appends each phase and each of uv's messages to a file named by the build hash
in the workspace's folder; the page follows that file through server-sent events, so any
worker of the server can serve the events. A line saying how the build ended is written last,
then a marker: a follower stops at the marker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from kiln.secrets import redact
from kiln.server.ui.events import follow_lines

if TYPE_CHECKING:
    from kiln.accounts import Actor
    from kiln.blobstores.base import BlobStore
    from kiln.catalog import EnvironmentRecord
    from kiln.workspace import Workspace

FOLLOW_FOR = 3600.0  # seconds: an events stream never outlives a stuck build by long
_STARTING = threading.Lock()


def _folder(workspace: Workspace) -> Path:
    from kiln.private import private_folder

    return private_folder(workspace.root / "ui-builds")


def live_log(workspace: Workspace, build_hash: str) -> Path:
    return _folder(workspace) / f"{build_hash}.log"


def _done(log: Path) -> Path:
    return log.with_suffix(".done")


def running(workspace: Workspace, build_hash: str) -> bool:
    """A UI build of ``build_hash`` is going on: its log has no end marker, and has grown
    within the hour (a server killed midway leaves a log that never ends)."""
    log = live_log(workspace, build_hash)
    try:
        fresh = time.time() - log.stat().st_mtime < FOLLOW_FOR
    except FileNotFoundError:
        return False
    return fresh and not _done(log).exists()


class _FileReporter:
    """Phases and details as lines of the live log (secrets redacted, as in any log)."""

    def __init__(self, log: Path) -> None:
        self.log = log

    def _line(self, text: str) -> None:
        with self.log.open("a", encoding="utf-8") as sink:
            sink.write(redact(text).rstrip("\n") + "\n")

    def phase(self, name: str) -> None:
        self._line(f"[kiln] {name}")

    def detail(self, text: str) -> None:
        self._line(f"  {text}")

    def message(self, text: str) -> None:
        self._line(text)


def _build(
    workspace: Workspace, record: EnvironmentRecord, reporter: _FileReporter, store: BlobStore
) -> None:
    from kiln.builds import ensure_built
    from kiln.errors import KilnError
    from kiln.serverinputs import stage_from_store

    started = time.monotonic()
    try:
        # Wheels and build contexts members registered went to the server's artifact store,
        # which may be S3: this host's build reads them from the workspace's own.
        stage_from_store(workspace, store, record.definition)
        ensure_built(workspace, record, retry=True, reporter=reporter)
        reporter.message(f"[kiln] build succeeded in {time.monotonic() - started:.1f} s")
    except KilnError as exc:
        reporter.message(f"[kiln] build failed: {' '.join(str(exc).split())}")
    except Exception as exc:  # a bug: said in the log, never a thread dying silently
        reporter.message(f"[kiln] build failed unexpectedly: {type(exc).__name__}")
    finally:
        _done(reporter.log).touch()


def start(workspace: Workspace, record: EnvironmentRecord, actor: Actor, store: BlobStore) -> bool:
    """Start building ``record`` in the background, audited as ``build.request`` by ``actor``;
    False if a UI build of it is running (nothing is started or audited then)."""
    from kiln.accounts import record_request

    log = live_log(workspace, record.build_hash)
    with _STARTING:  # two clicks at once start one build
        if running(workspace, record.build_hash):
            return False
        record_request(workspace, actor, "build.request", record.reference)
        _done(log).unlink(missing_ok=True)
        log.write_text(f"[kiln] building {record.reference} for {actor.name}\n", encoding="utf-8")
    reporter = _FileReporter(log)
    threading.Thread(target=_build, args=(workspace, record, reporter, store), daemon=True).start()
    return True


def follow(workspace: Workspace, build_hash: str) -> Iterator[str]:
    """Server-sent events: each new line of the live log, then ``end``."""
    log = live_log(workspace, build_hash)
    if not log.exists():
        return follow_lines(lambda: None, lambda: True)
    return follow_lines(lambda: log, _done(log).exists, limit=FOLLOW_FOR)
