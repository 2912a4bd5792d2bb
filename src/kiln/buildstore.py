"""Where a workspace keeps its locks and build records: its own registry, or the Kiln server that
serves it. The build core (buildlocks, builds, buildinfo) reads and writes only through
``open_build_store``, so a build on a client of a server resolves once for the whole team and
installs the lock everybody installs, exactly as on a shared database.

Rows are the registry's (``LockRow``, build rows as dicts); the server's answers are turned back
into the same shapes, and the lock's digest is checked against its text on both sides.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from kiln.registry.lock_queries import LockRow
from kiln.registry.lockrow import lock_digest

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from kiln.accounts import Actor
    from kiln.workspace import Workspace


class BuildStore(Protocol):
    def check_writable(self) -> None:
        """Raise Forbidden now when this user may not record builds, before any work."""

    def get_lock(
        self, *, build_hash: str, platform: str, generation: int | None = None
    ) -> LockRow | None:
        """A given generation, or the newest."""

    def list_locks(self, *, build_hash: str) -> list[LockRow]: ...

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
        """Store a generation; False when that generation exists already (another won)."""

    def record_build(self, *, log: Path, **values: Any) -> str:
        """Keep the log and record the attempt; returns the log's digest."""

    def list_builds(self, *, build_hash: str, limit: int = 100) -> list[dict[str, Any]]:
        """The attempts of ``build_hash`` on every machine, newest first."""

    def build_log(self, *, build_hash: str, digest: str) -> Path | None:
        """A stored log of ``build_hash`` as a local file, or None when it is not kept."""


class RegistryBuildStore:
    """The workspace's own database and artifact store. With an ``actor`` (a server's user),
    each write also appends its audit row, in the write's own transaction."""

    def __init__(self, workspace: Workspace, actor: Actor | None = None) -> None:
        self.workspace = workspace
        self.actor = actor

    def _audit(self, connection: Connection, action: str, subject: str) -> None:
        if self.actor is not None:
            from kiln.registry.account_queries import record_action

            record_action(connection, actor=self.actor.name, action=action, subject=subject)

    def check_writable(self) -> None:
        """Whoever can open a registry writes to it (the database's own rights apply)."""

    def get_lock(
        self, *, build_hash: str, platform: str, generation: int | None = None
    ) -> LockRow | None:
        from kiln.registry.lock_queries import get_lock

        with self.workspace.engine.connect() as connection:
            return get_lock(
                connection, build_hash=build_hash, platform=platform, generation=generation
            )

    def list_locks(self, *, build_hash: str) -> list[LockRow]:
        from kiln.registry.lock_queries import list_locks

        with self.workspace.engine.connect() as connection:
            return list_locks(connection, build_hash=build_hash)

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
        from kiln.registry.engine import write_transaction
        from kiln.registry.lock_queries import insert_lock

        with write_transaction(self.workspace.engine) as connection:
            stored = insert_lock(
                connection,
                build_hash=build_hash,
                platform=platform,
                generation=generation,
                lock_digest=lock_digest(lock_text),
                lock_format=lock_format,
                lock_text=lock_text,
                packages=packages,
                resolver=resolver,
            )
            if stored:
                self._audit(connection, "lock.store", f"{build_hash}/{platform}/{generation}")
        return stored

    def record_build(self, *, log: Path, **values: Any) -> str:
        from kiln.registry.engine import write_transaction
        from kiln.registry.lock_queries import record_build

        digest = self.workspace.artifacts.put_file(log)
        with write_transaction(self.workspace.engine) as connection:
            record_build(connection, log_digest=digest, **values)
            self._audit(connection, "build.record", f"{values.get('build_hash')}")
        return digest

    def list_builds(self, *, build_hash: str, limit: int = 100) -> list[dict[str, Any]]:
        from kiln.registry.lock_queries import list_builds

        with self.workspace.engine.connect() as connection:
            return list_builds(connection, build_hash=build_hash, limit=limit)

    def build_log(self, *, build_hash: str, digest: str) -> Path | None:
        return self.workspace.artifacts.lookup(digest)


def open_build_store(workspace: Workspace) -> BuildStore:
    if workspace.server_url is not None:
        from kiln.remotebuilds import ServerBuildStore

        return ServerBuildStore(workspace)
    return RegistryBuildStore(workspace)
