"""Where deployment records are kept: a ``DeploymentBook``. For a folder workspace (or a
shared database) the registry's ``deployments`` table, here; for a workspace served by
``kiln server`` the server's, through its API (kiln.serving.remotedeployments), which keeps
them in its registry with this same class. Either way the supervisor runs where the deployment
was created and writes its state through the book.

Rows are dicts of the stored values: the spec and the container names as JSON text, times as
epoch seconds. Each write is one transaction with its audit row; a book given an ``actor`` lets
it change only the deployments it created (admins any), as a server does for its users.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from kiln.accounts import actor_name, require_owner
from kiln.errors import Conflict
from kiln.registry import deployment_queries as queries
from kiln.registry.engine import write_transaction

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from kiln.accounts import Actor
    from kiln.workspace import Workspace


class NewDeployment(NamedTuple):
    """A deployment's first generation, as its creator records it."""

    name: str
    state: str
    spec: str  # JSON text
    host: str
    port: int | None
    supervisor: str | None
    kind: str


class DeploymentBook(Protocol):
    """Deployment records. Writes raise Forbidden for a caller who may not make them."""

    def get(self, name: str) -> dict[str, Any] | None: ...

    def list(self) -> list[dict[str, Any]]: ...

    def create(self, new: NewDeployment, *, replaces: str | None) -> None:
        """Record ``new``. ``replaces``: the supervisor token ('' for none) of the stopped,
        failed or dead record of that name the caller saw and replaces; None when it saw none.
        Conflict when the record is not what the caller saw any more."""
        ...

    def set_fields(self, name: str, values: Mapping[str, Any]) -> None: ...

    def request_generation(self, name: str, spec: str, state: str) -> int | None:
        """Ask for ``spec`` as the next generation; its number (None: no such deployment)."""
        ...

    def delete(self, name: str) -> bool: ...

    def check_may_change(self, name: str) -> None:
        """Refuse, before a process is signalled or stopped, a caller who may not change it."""
        ...


class RegistryDeployments:
    """The registry's ``deployments`` table."""

    def __init__(self, workspace: Workspace, actor: Actor | None = None) -> None:
        self.workspace = workspace
        self.actor = actor

    def get(self, name: str) -> dict[str, Any] | None:
        with self.workspace.engine.connect() as connection:
            return queries.get_deployment(connection, name=name)

    def list(self) -> list[dict[str, Any]]:
        with self.workspace.engine.connect() as connection:
            return queries.list_deployments(connection)

    def create(self, new: NewDeployment, *, replaces: str | None) -> None:
        from sqlalchemy.exc import IntegrityError

        try:
            with write_transaction(self.workspace.engine) as connection:
                existing = queries.get_deployment(connection, name=new.name)
                if existing is not None:
                    if replaces is None or (existing["supervisor"] or "") != replaces:
                        raise Conflict(
                            f"deployment {new.name!r} is being created by another command"
                        )
                    self._check_owner(existing)
                    queries.delete_deployment(connection, name=new.name)
                queries.insert_deployment(
                    connection,
                    **new._asdict(),
                    now=time.time(),
                    created_by=actor_name(self.actor),
                )
                self._audit(connection, "deployment.create", new.name)
        except IntegrityError:  # PostgreSQL: another create inserted the name since we looked
            raise Conflict(f"deployment {new.name!r} is being created by another command") from None

    def set_fields(self, name: str, values: Mapping[str, Any]) -> None:
        with write_transaction(self.workspace.engine) as connection:
            self._check_owner(queries.get_deployment(connection, name=name))
            queries.set_deployment_fields(connection, name=name, values=values, now=time.time())

    def request_generation(self, name: str, spec: str, state: str) -> int | None:
        with write_transaction(self.workspace.engine) as connection:
            self._check_owner(queries.get_deployment(connection, name=name))
            number = queries.request_generation(
                connection, name=name, spec=spec, state=state, now=time.time()
            )
            if number is not None:
                self._audit(connection, "deployment.update", name)
        return number

    def delete(self, name: str) -> bool:
        with write_transaction(self.workspace.engine) as connection:
            self._check_owner(queries.get_deployment(connection, name=name))
            deleted = queries.delete_deployment(connection, name=name)
            if deleted:
                self._audit(connection, "deployment.delete", name)
        return deleted

    def check_may_change(self, name: str) -> None:
        self._check_owner(self.get(name))

    def _check_owner(self, row: Mapping[str, Any] | None) -> None:
        """Only with an actor (a server's user): the local user owns a folder workspace."""
        if self.actor is not None and row is not None:
            require_owner(self.actor, [row["created_by"]], f"deployment {row['name']}")

    def _audit(self, connection: Connection, action: str, name: str) -> None:
        """In the write's own transaction: the change and its audit row commit together."""
        from kiln.registry.account_queries import record_action

        record_action(connection, actor=actor_name(self.actor), action=action, subject=name)


def deployment_book(workspace: Workspace, actor: Actor | None = None) -> DeploymentBook:
    """The book of ``workspace``'s deployments (a server's: its token's user is the actor)."""
    if workspace.server_url is not None:
        from kiln.serving.remotedeployments import ServerDeployments

        return ServerDeployments(workspace)
    return RegistryDeployments(workspace, actor)
