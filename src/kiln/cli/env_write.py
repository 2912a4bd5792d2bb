"""``kiln env`` commands that write: scaffold, register, download, archive/restore, tag."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kiln.cli.common import existing_workspace, from_reference, load_source, workspace
from kiln.cli.output import emit_json, warn


def _save(definition: object, directory: Path, fmt: str, **kwargs: object) -> list[Path]:
    from kiln.formats.dispatch import dropped_fields, save_definition

    for field in dropped_fields(definition, fmt):  # type: ignore[arg-type]
        warn(f"the {fmt} format has no place for `{field}`; it is left out")
    return save_definition(definition, directory, fmt, **kwargs)  # type: ignore[arg-type]


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


def register(args: argparse.Namespace) -> int:
    from kiln import catalog

    source = load_source(args)
    from kiln.environment.validation import assign

    definition = source.definition
    if args.name is not None:
        assign(definition, "name", args.name)
    if args.version is not None:
        assign(definition, "version", args.version)
    ws = workspace(args)
    result = catalog.register(ws, definition, source_dir=source.source_dir)
    record = result.record
    if args.json:
        emit_json(
            {
                **record.summary(),
                "created": result.created,
                "same_build_as": catalog.same_build(ws, record),
            }
        )
        return 0
    if result.created:
        print(f"Registered {record.reference} (build {record.build_hash[:12]})")
    else:
        note = " (archived)" if record.archived else ""
        print(f"Unchanged: same content as {record.reference}{note}")
    shared = catalog.same_build(ws, record)
    if shared and result.created:
        print(f"Same build as {', '.join(shared[:5])}: no rebuild needed")
    return 0


def download(args: argparse.Namespace) -> int:
    directory = Path(args.directory)
    ws = existing_workspace(args)
    source = from_reference(args, args.reference)
    written = _save(
        source.definition, directory, args.format, lookup=ws.artifacts.lookup, overwrite=args.force
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
