"""Locks and build records of a workspace served by ``kiln server``: the BuildStore a client's
build uses (kiln.buildstore). The client resolves and builds on its own machine; the server keeps
the one lock a team installs and every attempt with its log.

Nothing from the server is trusted blindly: the build core checks a lock's text against its
digest and its pins against the definition before installing it, exactly as it does with rows of
a shared database, and a downloaded log must hash to the digest it was asked by.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.registry.lock_queries import LockRow
from kiln.utctime import utc_text

if TYPE_CHECKING:
    from kiln.workspace import Workspace


# What a build log may weigh when it travels in a request; a longer one keeps its end.
LOG_LIMIT = 3 * 1024 * 1024


def log_tail(path: Path) -> str:
    """The log as text for a request: its last ``LOG_LIMIT`` bytes, marked when cut."""
    with path.open("rb") as handle:
        size = handle.seek(0, 2)
        handle.seek(max(0, size - LOG_LIMIT))
        data = handle.read()
    text = data.decode("utf-8", errors="replace")
    if size > LOG_LIMIT:
        where = socket.gethostname()
        text = f"[the first {size - LOG_LIMIT} bytes of this log were left on {where}]\n{text}"
    return text


def parse_time(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text)


class ServerBuildStore:
    def __init__(self, workspace: Workspace) -> None:
        from kiln.remoteenvs import client

        self.workspace = workspace
        self.api = client(workspace)

    def check_writable(self) -> None:
        """Asked of the server once: a reader is refused before resolving or installing."""
        from kiln.accounts import Actor, require_writer

        me = self.api.request("GET", "/whoami")
        require_writer(Actor(name=me["name"], role=me["role"]))

    def _row(self, found: dict[str, Any]) -> LockRow:
        created = parse_time(found["created_at"])
        assert created is not None
        return LockRow(
            build_hash=found["build_hash"],
            platform=found["platform"],
            generation=found["generation"],
            lock_digest=found["lock_digest"],
            lock_format=found["format"],
            lock_text=found["text"],
            packages=found["packages"],
            resolver=found["resolver"],
            created_at=created,
        )

    def get_lock(
        self, *, build_hash: str, platform: str, generation: int | None = None
    ) -> LockRow | None:
        params: dict[str, Any] = {"platform": platform}
        if generation is not None:
            params["generation"] = generation
        found = self.api.request("GET", f"/builds/{build_hash}/locks", params=params)
        return self._row(found[0]) if found else None

    def list_locks(self, *, build_hash: str) -> list[LockRow]:
        return [self._row(f) for f in self.api.request("GET", f"/builds/{build_hash}/locks")]

    def insert_lock(
        self,
        *,
        build_hash: str,
        platform: str,
        generation: int,
        lock_format: str,
        lock_text: str,
        packages: list[dict[str, str]],
        resolver: str,
    ) -> bool:
        offered = {
            "platform": platform,
            "generation": generation,
            "format": lock_format,
            "resolver": resolver,
            "packages": packages,
            "text": lock_text,
        }
        answer = self.api.request("POST", f"/builds/{build_hash}/locks", json=offered)
        return bool(answer["stored"])

    def record_build(self, *, log: Path, **values: Any) -> str:
        started = values.pop("started_at")
        attempt = {  # who made it is the server's to say: the token's user
            **{k: v for k, v in values.items() if k not in ("build_hash", "created_by")},
            "tool_versions": json.loads(values["tool_versions"] or "{}"),
            "started_at": utc_text(started),
            "log": log_tail(log),
        }
        answer = self.api.request("POST", f"/builds/{values['build_hash']}/attempts", json=attempt)
        return str(answer["log_digest"])

    def list_builds(self, *, build_hash: str, limit: int = 100) -> list[dict[str, Any]]:
        found = self.api.request("GET", f"/builds/{build_hash}/attempts", params={"limit": limit})
        return [
            {
                **attempt,
                "tool_versions": json.dumps(attempt["tool_versions"]),
                "started_at": parse_time(attempt["started_at"]),
            }
            for attempt in found
        ]

    def build_log(self, *, build_hash: str, digest: str) -> Path | None:
        """Downloaded once into this machine's cache, by digest, verified."""
        import hashlib

        from kiln.artifacts import publish
        from kiln.errors import NotFound, WorkspaceError

        kept = self.workspace.cache_root / "server-logs" / digest
        if kept.is_file():
            return kept
        try:
            data: bytes = self.api.send("GET", f"/builds/{build_hash}/logs/{digest}").content
        except NotFound:
            return None
        if hashlib.sha256(data).hexdigest() != digest:
            raise WorkspaceError(
                f"the build log {digest[:12]} from {self.api.url} does not match its digest"
            )
        publish(data, kept)
        return kept
