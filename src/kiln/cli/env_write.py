"""``kiln env`` commands that write: scaffold, register, download, archive/restore, tag."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.cli.common import Source, existing_workspace, from_reference, load_source, workspace
from kiln.cli.output import emit_json, warn

if TYPE_CHECKING:
    from kiln.catalog import EnvironmentRecord
    from kiln.environment.definition import EnvironmentDefinition
    from kiln.sourcememo import SourceSpec
    from kiln.workspace import Workspace


def _save(
    definition: EnvironmentDefinition,
    directory: Path,
    fmt: str,
    *,
    default_image: str | None = None,
    **kwargs: Any,
) -> list[Path]:
    from kiln.formats.dispatch import export

    written, notes = export(definition, directory, fmt, default_image=default_image, **kwargs)
    for note in notes:
        warn(note)
    return written


def scaffold(args: argparse.Namespace) -> int:
    from kiln.environment.validation import validate_definition

    directory = Path(args.directory)
    python = args.python or f"{sys.version_info.major}.{sys.version_info.minor}"
    definition = validate_definition(
        {
            "name": args.name,
            "description": f"{args.name}: describe what this environment is for",
            "python": {"version": python, "pip": {"packages": ["numpy==2.4.6"]}},
            "environment_variables": {"PYTHONUNBUFFERED": "1"},
        },
        source="--name/--python",
    )
    written = _save(definition, directory, args.format, overwrite=args.force)
    if args.json:
        emit_json({"name": args.name, "format": args.format, "files": [str(p) for p in written]})
    else:
        print(
            f"Wrote {', '.join(str(p) for p in written)}; edit it, then `kiln env register -d {directory}`"
        )
    return 0


def _source_spec(args: argparse.Namespace) -> SourceSpec:
    from kiln.sourcememo import SourceSpec

    return SourceSpec(Path(args.file or args.directory), args.format, args.name, args.version)


def register(args: argparse.Namespace) -> int:
    from kiln import catalog

    started_ns = time.time_ns()
    source = load_source(args)
    from kiln.environment.validation import assign

    definition = source.definition
    if args.name is not None:
        assign(definition, "name", args.name)
    elif _named_by_folder(args):
        note = (
            f"a requirements file holds no name: registered as `{definition.name}`, its "
            "folder's name; pass -n NAME to choose one"
        )
        warn(note)
        source = source._replace(warnings=(*source.warnings, note))
    if args.version is not None:
        assign(definition, "version", args.version)
    ws = workspace(args)
    result = catalog.register(ws, definition, source_dir=source.source_dir)
    record = result.record
    if ws.is_embedded and not catalog.reads_local_inputs(definition):
        _remember(ws, _source_spec(args), source, record, definition.version, started_ns)
    shared = catalog.same_build(ws, record)
    return _print_registered(args, record.summary(), shared, created=result.created)


def _named_by_folder(args: argparse.Namespace) -> bool:
    path = getattr(args, "file", None) or getattr(args, "directory", None)
    if not path:
        return False
    from kiln.formats.dispatch import locate

    return locate(Path(path), args.format)[0] == "requirements"


def _remember(
    ws: Workspace,
    spec: SourceSpec,
    source: Source,
    record: EnvironmentRecord,
    version: str | None,
    started_ns: int,
) -> None:
    """For the next register of the same files (see kiln.sourcememo)."""
    from kiln.sourcememo import Remembered, remember

    digest = record.definition_digest
    remembered = Remembered(record.name, version, digest, list(source.warnings))
    remember(ws.root, spec, source.files, remembered, started_ns=started_ns)


def register_fast(args: argparse.Namespace) -> int | None:
    """An unchanged register with the standard library only, or None for ``register``: the
    files are those last registered (kiln.sourcememo), and the registry still holds that
    version with that content."""
    from kiln.errors import KilnError
    from kiln.registry.fastread import find_version
    from kiln.sourcememo import recall

    try:
        ws = existing_workspace(args)
    except KilnError:  # the full path makes the default workspace, or reports the problem
        return None
    remembered = recall(ws.root, _source_spec(args)) if ws.is_embedded else None
    if remembered is None:
        return None
    found = find_version(
        ws.registry_file,
        name=remembered.name,
        version=remembered.version,
        definition_digest=remembered.definition_digest,
    )
    if found is None:
        return None
    from kiln.curated import sharing_build

    for message in remembered.warnings:
        warn(message)
    summary = found.summary
    shared = found.same_build + sharing_build(summary["build_hash"], besides=summary["name"])
    return _print_registered(args, summary, shared, created=False)


def _print_registered(
    args: argparse.Namespace, summary: dict[str, Any], shared: list[str], *, created: bool
) -> int:
    if args.json:
        emit_json({**summary, "created": created, "same_build_as": shared})
        return 0
    reference = f"{summary['name']}:{summary['version']}"
    if created:
        print(f"Registered {reference} (build {summary['build_hash'][:12]})")
    else:
        note = " (archived)" if summary["archived"] else ""
        print(f"Unchanged: same content as {reference}{note}")
    if shared and created:
        print(f"Same build as {', '.join(shared[:5])}: no rebuild needed")
    return 0


def download(args: argparse.Namespace) -> int:
    directory = Path(args.directory)
    from kiln.buildinputs import content_lookup
    from kiln.images import default_base_image

    ws = existing_workspace(args)
    source = from_reference(args, args.reference)
    written = _save(
        source.definition,
        directory,
        args.format,
        default_image=default_base_image(ws),
        lookup=content_lookup(ws, source.definition),
        overwrite=args.force,
    )
    if args.json:
        emit_json(
            {
                "name": source.definition.name,
                "version": source.definition.version,
                "format": args.format,
                "files": [str(p) for p in written],
            }
        )
    else:
        print(f"Saved {source.label} as {args.format} in {directory}")
    return 0


def archive(args: argparse.Namespace) -> int:
    from kiln import catalog

    name, version = catalog.parse_reference(args.reference)
    explicit = version if ":" in args.reference else None
    count = catalog.set_archived(workspace(args), name, explicit, archived=args.archived)
    verb = "Archived" if args.archived else "Restored"
    if args.json:
        emit_json(
            {
                "name": name,
                "version": explicit,
                "archived": args.archived,
                "versions_changed": count,
            }
        )
    else:
        print(f"{verb} {name}:{explicit}" if explicit else f"{verb} {count} version(s) of {name}")
    return 0


def tag(args: argparse.Namespace) -> int:
    from kiln import catalog
    from kiln.errors import UsageError

    name, version = catalog.parse_reference(args.reference)
    add = {}
    for pair in args.tags:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"tag {pair!r} must be KEY=VALUE; use --remove KEY to drop one")
        add[key] = value
    record = catalog.set_tags(workspace(args), name, version, add=add, remove=args.remove)
    if args.json:
        emit_json(record.summary())
    else:
        print(
            f"{record.reference} tags: "
            + (", ".join(f"{k}={v}" for k, v in record.tags.items()) or "(none)")
        )
    return 0
