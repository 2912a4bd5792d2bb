"""What used what: the runs that used an environment version.

One query for every face (``kiln env show --runs``, the SDK, the server), in the shape of the
public ``environment-detail`` schema's ``runs``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kiln.workspace import Workspace

MAX_RUNS = 1000


def runs_of(workspace: Workspace, name: str, version: str) -> list[dict[str, Any]]:
    """The runs that used ``name:version``, newest first (at most ``MAX_RUNS``)."""
    from kiln.runs.store import RunStore
    from kiln.utctime import utc_text

    store = RunStore(workspace)
    try:
        found = store.find(env_name=name, env_version=version, limit=MAX_RUNS)
    finally:
        store.close()
    return [
        {
            "id": r.id,
            "experiment": r.experiment,
            "status": r.status,
            "lock_digest": r.lock_digest,
            "created_at": utc_text(r.created_at),
        }
        for r in found
    ]
