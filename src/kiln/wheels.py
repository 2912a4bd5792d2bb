"""Wheels stored in a workspace (``kiln wheel add``): checked, kept in the artifact store by
sha256 and recorded in the registry. Definitions name one ``wheel:FILENAME``; registering
resolves that name to the wheel's digest, which is what enters the build hash."""

from __future__ import annotations

import datetime as dt
import zipfile
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path
from typing import Any

from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    canonicalize_version,
    parse_wheel_filename,
)

from kiln.environment.definition import EnvironmentDefinition
from kiln.environment.files import file_digest
from kiln.environment.packages import local_file_name, parse_pip_entry
from kiln.errors import Conflict, InvalidDefinition, NotFound
from kiln.registry.wheel_queries import WheelRow
from kiln.workspace import Workspace


@dataclass(frozen=True)
class AddResult:
    wheel: WheelRow
    added: bool  # False: the same content was stored already


def inspect_wheel(path: Path) -> tuple[str, str]:
    """(canonical name, version) of a wheel file, after checking that it is one."""
    if not path.is_file():
        raise NotFound(f"{path} does not exist; pass the path of a .whl file")
    try:
        name, version, _, _ = parse_wheel_filename(path.name)
    except InvalidWheelFilename as exc:
        raise InvalidDefinition(
            f"{path.name} is not a wheel file name ({exc}); expected NAME-VERSION-TAGS.whl"
        ) from None
    dist, raw_version = path.name.split("-")[:2]
    member = f"{dist}-{raw_version}.dist-info/METADATA"
    try:
        with zipfile.ZipFile(path) as archive:
            broken = archive.testzip()
            if broken is not None:
                raise InvalidDefinition(f"{path} is a corrupt wheel: {broken} fails its checksum")
            text = archive.read(member).decode("utf-8", errors="replace")
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise InvalidDefinition(f"{path} is a corrupt wheel: not a readable zip ({exc})") from None
    except KeyError:
        raise InvalidDefinition(f"{path} is not a valid wheel: it has no {member}") from None
    metadata = HeaderParser().parsestr(text)
    found = (canonicalize_name(metadata.get("Name") or ""), metadata.get("Version") or "")
    if found[0] != name or canonicalize_version(found[1]) != canonicalize_version(version):
        raise InvalidDefinition(
            f"{path} is not a valid wheel: its METADATA says {found[0]} {found[1]} but the file "
            f"name says {name} {version}"
        )
    return str(name), str(version)


def check_local_wheel(path: Path, *, shown: str) -> None:
    """Refuse a ``.whl`` a definition names that is not a wheel (a 1-byte file, an HTML error
    page saved under a wheel's name): one line naming the file (``shown``, as written) and why.
    Only the zip's directory is read, so a large wheel costs no more than a small one."""
    fix = "build it again (`pip wheel`, `uv build`) or name the right file"
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, EOFError, OSError):
        raise InvalidDefinition(f"{shown} is not a wheel: not a zip archive; {fix}") from None
    if not any(_is_wheel_metadata(name) for name in names):
        raise InvalidDefinition(f"{shown} is not a wheel: it has no .dist-info/WHEEL; {fix}")


def _is_wheel_metadata(member: str) -> bool:
    parts = member.split("/")
    return len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] == "WHEEL"


def add_wheel(workspace: Workspace, path: Path) -> AddResult:
    """Store a wheel in a folder workspace; the same content again is a no-op (``added`` is
    False). kiln.wheelstore does it for a team server's workspace too."""
    inspect_wheel(path)  # first: a missing or malformed file is one clear line
    return record_wheel(workspace, path, file_digest(path), store_file=True)


def record_wheel(
    workspace: Workspace,
    path: Path,
    digest: str,
    *,
    store_file: bool,
    actor: str | None = None,
) -> AddResult:
    """Record the wheel at ``path`` (content ``digest``) in the registry under its file name,
    storing the file in the workspace's artifact store first when ``store_file``; audited as
    ``wheel.add`` by ``actor`` (a server's user) in the same transaction."""
    from kiln.registry.account_queries import record_action
    from kiln.registry.engine import write_transaction
    from kiln.registry.wheel_queries import find_wheel, insert_wheel

    name, version = inspect_wheel(path)
    filename = path.name
    with workspace.engine.connect() as connection:
        existing = find_wheel(connection, filename=filename, sha256=digest)
    if existing is None:
        if store_file and workspace.artifacts.put_file(path) != digest:
            raise InvalidDefinition(f"{filename} changed while it was being added; retry")
        with write_transaction(workspace.engine) as connection:
            added = insert_wheel(
                connection,
                name=name,
                version=version,
                filename=filename,
                sha256=digest,
                size=path.stat().st_size,
            )
            if added and actor is not None:
                record_action(connection, actor=actor, action="wheel.add", subject=filename)
            existing = find_wheel(connection, filename=filename, sha256=digest)
        assert existing is not None
        if added:
            return AddResult(existing, True)
    if existing.sha256 != digest:
        raise Conflict(
            f"a different wheel named {filename} is stored already (sha256 "
            f"{existing.sha256[:12]}); give a rebuilt wheel a new version or build tag"
        )
    return AddResult(existing, False)


def wheel_document(row: WheelRow) -> dict[str, Any]:
    """A wheel as ``--json`` and the API give it (kiln.schemas.workspace.Wheel)."""
    from kiln.utctime import utc_text

    return {
        "name": row.name, "version": row.version, "filename": row.filename,
        "sha256": row.sha256, "size": row.size, "added_at": utc_text(row.added_at),
        "entry": f"wheel:{row.filename}",
    }  # fmt: skip


def wheel_row(document: dict[str, Any]) -> WheelRow:
    """A wheel as the API sends it (kiln.schemas.workspace.Wheel), back into a row."""
    added = dt.datetime.fromisoformat(str(document["added_at"]).replace("Z", "+00:00"))
    return WheelRow(
        str(document["name"]), str(document["version"]), str(document["filename"]),
        str(document["sha256"]), int(document["size"]), added,
    )  # fmt: skip


def list_wheels(workspace: Workspace) -> list[WheelRow]:
    from kiln.registry.wheel_queries import list_wheels as query

    with workspace.engine.connect() as connection:
        return query(connection)


def resolve_stored_wheels(
    workspace: Workspace, definition: EnvironmentDefinition
) -> EnvironmentDefinition:
    """A copy whose ``pip.file_digests`` maps each ``wheel:`` entry to the stored content."""
    from kiln.registry.wheel_queries import find_wheel

    updated = definition.model_copy(deep=True)
    pip = updated.python.pip
    with workspace.engine.connect() as connection:
        for index, entry in enumerate(pip.packages):
            if parse_pip_entry(entry).kind != "wheel":
                continue
            filename = local_file_name(entry)
            row = find_wheel(connection, filename=filename)
            if row is None:
                raise InvalidDefinition(
                    f"`python.pip.packages[{index}]`: {entry!r} names no wheel stored in the "
                    f"workspace; store it first with `kiln wheel add PATH/{filename}`"
                )
            pip.file_digests[entry] = row.sha256
    return updated
