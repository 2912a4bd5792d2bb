"""What a team server does when a client registers a model: the content must already be in the
artifact store (a file's blob at its size; a folder's manifest checked against its tree digest
and every file it names), and the record's ``created_by`` is the token's user, whatever the
client sent. Readers register nothing; any contributor registers the next version of a name,
as with environments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kiln.accounts import Actor, require_writer
from kiln.errors import InvalidRequest
from kiln.serving.modelrecords import Lineage, ModelRecord, Stored
from kiln.serving.models import check_name, record

if TYPE_CHECKING:
    from kiln.blobstores.base import BlobStore
    from kiln.workspace import Workspace


def _stored(store: BlobStore, name: str, body: Mapping[str, Any]) -> Stored:
    from kiln.blobstores.base import check_digest
    from kiln.filetrees import check_stored

    kind, digest, manifest = body["kind"], check_digest(body["digest"]), body.get("manifest")
    what = f"model {name}"
    if kind == "file" and manifest is None:
        size = store.size(digest)
        if size is None:
            raise InvalidRequest(
                f"{what}: the artifact store has no file with sha256 {digest}; upload it first"
            )
    elif kind == "folder" and manifest is not None:
        size = sum(e.size for e in check_stored(store, manifest, tree_digest=digest, what=what))
    else:
        raise InvalidRequest(
            f"{what}: `kind` {kind!r} with manifest {manifest!r} is not valid; a file has no "
            "manifest, a folder needs one"
        )
    return Stored(digest, kind, str(body["file_name"]), size, manifest)


def register(
    workspace: Workspace, store: BlobStore, actor: Actor, body: Mapping[str, Any]
) -> ModelRecord:
    """Record content already in ``store`` as the next version of ``body['name']``."""
    require_writer(actor)
    name = check_name(str(body["name"]))
    environment = body.get("environment")
    lineage = Lineage(
        body.get("tags"),
        body.get("description"),
        body.get("run_id"),
        (str(environment[0]), str(environment[1])) if environment else None,
    )
    return record(workspace, name, _stored(store, name, body), lineage, actor=actor)
