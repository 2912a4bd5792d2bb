"""What a team server does for the deployments its clients run. A deployment's supervisor runs
on the client that created it (kiln.serving.deployments, the same code as on a folder); its
record is the server's, written through these functions (kiln.serving.remotedeployments asks
for them over the API) into the registry's book with the caller as its actor.

Who may write follows environments and runs: a reader writes nothing; a contributor creates
deployments and changes (updates, reports the state of, deletes) only those it created; an
admin changes any. Who created one is the token's user, whatever the client sent. The records
are stored as sent, never judged: whether a supervisor lives is known only on its own host.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kiln.accounts import Actor, require_writer
from kiln.errors import InvalidRequest, NotFound
from kiln.serving.deploymentbook import NewDeployment, RegistryDeployments
from kiln.serving.deployments import (
    CONTAINER,
    FAILED,
    HEALTHY,
    PROCESS,
    STOPPED,
    TRANSITIONING,
    UPDATING,
)
from kiln.serving.models import check_name
from kiln.serving.remotedeployments import document_of, row_of

if TYPE_CHECKING:
    from kiln.workspace import Workspace

KINDS = (PROCESS, CONTAINER)
# What a supervisor records; Dead is never stored, only seen on the supervisor's host.
STATES = (TRANSITIONING, HEALTHY, UPDATING, FAILED, STOPPED)


def _checked_state(state: object) -> None:
    if state not in STATES:
        raise InvalidRequest(f"`state`: {state!r} is not one of {', '.join(STATES)}")


def _checked_spec(spec: Mapping[str, Any]) -> None:
    """No environment variable value that looks like a secret: the registry never keeps one."""
    from kiln.secrets import plain_secret_variable

    for key, value in dict(spec.get("environment_variables") or {}).items():
        if problem := plain_secret_variable(str(key), str(value)):
            raise InvalidRequest(f"`environment_variables`: {problem}")


def create(
    workspace: Workspace, actor: Actor, record: Mapping[str, Any], replaces: str | None
) -> dict[str, Any]:
    """Record a client's new deployment (its first generation); its stored document."""
    require_writer(actor)
    name = check_name(str(record["name"]), field="name")
    if record["kind"] not in KINDS:
        raise InvalidRequest(f"`kind`: {record['kind']!r} is not one of {', '.join(KINDS)}")
    _checked_spec(record["spec"])
    _checked_state(record["state"])
    row = row_of({key: record[key] for key in NewDeployment._fields})
    RegistryDeployments(workspace, actor).create(NewDeployment(**row), replaces=replaces)
    return document(workspace, name)


def set_fields(
    workspace: Workspace, actor: Actor, name: str, values: Mapping[str, Any]
) -> dict[str, Any]:
    """What the client's supervisor reports: state, port, error, serving generation, image."""
    if "state" in values:
        _checked_state(values["state"])
    RegistryDeployments(workspace, actor).set_fields(name, row_of(values))
    return document(workspace, name)


def request_generation(
    workspace: Workspace, actor: Actor, name: str, spec: Mapping[str, Any], state: str
) -> int | None:
    _checked_spec(spec)
    _checked_state(state)
    book = RegistryDeployments(workspace, actor)
    return book.request_generation(name, str(row_of({"spec": spec})["spec"]), state)


def delete(workspace: Workspace, actor: Actor, name: str) -> bool:
    return RegistryDeployments(workspace, actor).delete(name)


def check_may_change(workspace: Workspace, actor: Actor, name: str) -> None:
    require_writer(actor)
    book = RegistryDeployments(workspace, actor)
    if book.get(name) is None:
        raise NotFound(f"no deployment {name!r}; see `kiln deploy list`")
    book.check_may_change(name)


def document(workspace: Workspace, name: str) -> dict[str, Any]:
    """The stored record as the API sends it (no state inferred: the client infers)."""
    row = RegistryDeployments(workspace).get(name)
    if row is None:
        raise NotFound(f"no deployment {name!r}; see `kiln deploy list`")
    return document_of(row)


def documents(workspace: Workspace) -> list[dict[str, Any]]:
    return [document_of(row) for row in RegistryDeployments(workspace).list()]
