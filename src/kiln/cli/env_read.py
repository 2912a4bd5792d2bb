"""Read-only ``kiln env`` commands: list, show, hash, diff, lint, schema."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import TYPE_CHECKING, Any

from kiln.cli.common import existing_workspace, load_source, path_or_reference
from kiln.cli.output import emit_fields, emit_json, emit_table

if TYPE_CHECKING:
    from kiln.catalog import EnvironmentRecord
    from kiln.envdetail import Shown
    from kiln.workspace import Workspace


def _tags(pairs: list[str]) -> dict[str, str | None]:
    return {p.split("=", 1)[0]: (p.split("=", 1)[1] if "=" in p else None) for p in pairs}


def _summaries(args: argparse.Namespace) -> list[dict[str, Any]]:
    from kiln.envlist import list_versions

    return list_versions(
        existing_workspace(args),
        all_versions=args.all_versions,
        include_archived=args.archived,
        name_contains=args.search,
        tags=_tags(args.tag),
        include_curated=not args.no_curated,
        include_anonymous=args.anonymous,
    )


def list_(args: argparse.Namespace) -> int:
    summaries = _summaries(args)
    if args.json:
        emit_json(summaries)
        return 0
    rows = [
        (
            s["name"],
            s["version"],
            s["build_hash"][:12],
            "curated" if s["curated"] else "archived" if s["archived"] else "",
            s["created_at"][:16].replace("T", " ") if s["created_at"] else "",
        )
        for s in summaries
    ]
    emit_table(["name", "version", "build", "status", "registered"], rows)
    return 0


def show(args: argparse.Namespace) -> int:
    from kiln import catalog
    from kiln.envdetail import shown

    ws = existing_workspace(args)
    record = catalog.get(ws, *catalog.parse_reference(args.reference))
    return print_shown(args, ws, shown(ws, record), record)


def show_fast(args: argparse.Namespace) -> int | None:
    """``show`` with the standard library only (see kiln.envdetail), or None for ``show``."""
    from kiln.envdetail import shown_fast

    if args.build:
        return None  # the build report reads the build's records: the full path
    ws = existing_workspace(args)
    found = shown_fast(ws, args.reference)
    return None if found is None else print_shown(args, ws, found, None)


def print_shown(
    args: argparse.Namespace, ws: Workspace, found: Shown, record: EnvironmentRecord | None
) -> int:
    build_info = None
    if args.build:
        from kiln.cli.build_cmds import show_build

        assert record is not None
        build_info = show_build(args, record)
    runs = None
    if args.runs:
        from kiln.lineage import runs_of

        runs = runs_of(ws, found.summary["name"], found.summary["version"])
    if args.json:
        data: dict[str, Any] = dict(found.summary)
        data.update(same_build_as=found.same_build_as, definition=found.definition)
        if build_info is not None:
            data["build"] = build_info
        if runs is not None:
            data["runs"] = runs
        emit_json(data)
        return 0
    emit_fields(_shown_fields(found))
    if build_info is not None:
        from kiln.cli.build_cmds import print_build

        print("build on this machine:")
        print_build(build_info)
    if runs is not None:
        print(f"runs ({len(runs)}):")
        for run in runs:
            print(f"  {run['id']}  {run['status']}  {run['created_at']}")
    return 0


def _status(summary: dict[str, Any]) -> str:
    if summary["curated"]:
        return "curated (read-only)"
    return "archived" if summary["archived"] else "active"


def _shown_fields(found: Shown) -> list[tuple[str, Any]]:
    """The text view, from the same (masked) data as ``--json``."""
    summary, definition = found.summary, found.definition
    python, docker = definition.get("python", {}), definition.get("docker", {})
    conda, pip = python.get("conda", {}), python.get("pip", {})
    dockerfile, created = docker.get("dockerfile"), summary["created_at"]
    return [
        ("name", summary["name"]),
        ("version", summary["version"]),
        ("description", summary["description"]),
        ("status", _status(summary)),
        (
            "registered",
            dt.datetime.fromisoformat(created).isoformat(timespec="seconds") if created else None,
        ),
        ("registered by", summary["created_by"]),
        ("tags", summary["tags"]),
        ("build hash", summary["build_hash"]),
        ("definition digest", summary["definition_digest"]),
        ("same build as", ", ".join(found.same_build_as) if found.same_build_as else None),
        ("python", python.get("version")),
        ("user managed", python.get("interpreter_path") if python.get("user_managed") else None),
        ("conda channels", conda.get("channels")),
        ("conda packages", conda.get("packages")),
        ("pip packages", pip.get("packages")),
        ("pip index", pip.get("index_url")),
        ("base image", docker.get("base_image")),
        ("dockerfile", f"(inline, {len(dockerfile.splitlines())} lines)" if dockerfile else None),
        ("build context", docker.get("build_context")),
        ("git commit", docker.get("build_context_commit")),
        ("env vars", definition["environment_variables"]),
        ("inferencing stack", definition.get("inferencing_stack_version")),
    ]


def hash_(args: argparse.Namespace) -> int:
    from kiln.environment.canonical import build_hash, definition_digest

    source = load_source(args)
    data = {
        "name": source.definition.name,
        "source": source.label,
        "build_hash": build_hash(source.definition),
        "definition_digest": definition_digest(source.definition),
    }
    if args.json:
        emit_json(data)
    else:
        print(
            f"build_hash         {data['build_hash']}\ndefinition_digest  {data['definition_digest']}"
        )
    return 0


def diff(args: argparse.Namespace) -> int:
    from kiln.environment.diff import describe, diff

    old, new = path_or_reference(args, args.old), path_or_reference(args, args.new)
    result = diff(old.definition, new.definition)
    if args.json:
        emit_json({"old": old.label, "new": new.label, **result.as_dict()})
    else:
        print(f"--- {old.label}\n+++ {new.label}")
        for line in describe(result):
            print(line)
    return 0


def lint(args: argparse.Namespace) -> int:
    from kiln.environment.lint import lint

    source = load_source(args)
    findings = lint(source.definition)
    if args.json:
        emit_json({"source": source.label, "findings": [f.as_dict() for f in findings]})
    elif findings:
        for f in findings:
            print(f"{source.label}: {f.level}: `{f.field}`: {f.message}")
    else:
        print(f"{source.label}: no problems found")
    return 1 if findings else 0


def schema(args: argparse.Namespace) -> int:
    from kiln.formats.kiln_yaml import json_schema_text

    sys.stdout.write(json_schema_text())
    return 0
