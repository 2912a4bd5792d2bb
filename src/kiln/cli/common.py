"""What several commands share: opening the workspace, and reading a definition from a file,
a folder or the registry."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from kiln.cli.output import warn

if TYPE_CHECKING:
    import argparse

    from kiln.catalog import EnvironmentRecord
    from kiln.environment.definition import EnvironmentDefinition
    from kiln.workspace import Workspace


def workspace(args: argparse.Namespace) -> Workspace:
    """The workspace for a command that writes (made at the per-user default if none)."""
    from kiln.workspace import Workspace

    return Workspace.discover(args.workspace)


def existing_workspace(args: argparse.Namespace) -> Workspace:
    """The workspace for a command that only reads: never created by the reading."""
    from kiln.workspace import Workspace

    return Workspace.discover(args.workspace, create=False)


class Source(NamedTuple):  # not a dataclass: the fast paths import this module
    definition: EnvironmentDefinition
    label: str
    source_dir: Path | None = None
    record: EnvironmentRecord | None = None
    files: tuple[Path, ...] = ()  # what the loader read
    warnings: tuple[str, ...] = ()  # shown already


def from_path(path: Path, fmt: str | None, args: argparse.Namespace) -> Source:
    """A definition file or folder; one that only names a registered version (azureml-core's
    reference) is that version, from the workspace."""
    from kiln.formats.base import RegisteredReference
    from kiln.formats.dispatch import load_path

    try:
        loaded = load_path(path, fmt)
    except RegisteredReference as reference:
        from kiln import catalog
        from kiln.errors import WorkspaceError

        try:
            ws = existing_workspace(args)
        except WorkspaceError:
            raise reference from None  # says what the file is and that it needs a workspace
        record = catalog.resolve_reference(ws, reference)
        # The file read is the reference: a changed file is a new source to the register memo.
        files = (Path(reference.source),)
        return Source(record.definition, record.reference, None, record, files=files)
    for message in loaded.warnings:
        warn(message)
    source_dir = path if path.is_dir() else path.parent
    return Source(
        loaded.definition, str(path), source_dir, files=loaded.files, warnings=loaded.warnings
    )


def from_reference(args: argparse.Namespace, reference: str) -> Source:
    from kiln import catalog

    name, version = catalog.parse_reference(reference)
    record = catalog.get(existing_workspace(args), name, version)
    return Source(record.definition, record.reference, None, record)


def load_source(args: argparse.Namespace) -> Source:
    """From ``-f FILE``, ``-d DIR`` or a ``NAME[:VERSION]`` positional."""
    if getattr(args, "file", None):
        return from_path(Path(args.file), args.format, args)
    if getattr(args, "directory", None):
        return from_path(Path(args.directory), args.format, args)
    return from_reference(args, args.reference)


def path_or_reference(args: argparse.Namespace, text: str) -> Source:
    """``diff`` operands: an existing path is a file, anything else a registry reference."""
    path = Path(text)
    return from_path(path, None, args) if path.exists() else from_reference(args, text)
