"""Read-only ``kiln env`` commands: list, show, hash, diff, lint, schema."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from kiln.cli.common import load_source, path_or_reference, workspace
from kiln.cli.output import emit_fields, emit_json, emit_table


def _tags(pairs: list[str]) -> dict[str, str | None]:
    return {p.split("=", 1)[0]: (p.split("=", 1)[1] if "=" in p else None) for p in pairs}


def _summaries(args: argparse.Namespace) -> list[dict[str, Any]]:
    from kiln.environment import ANONYMOUS_NAME

    found = _all_summaries(args)
    if args.anonymous:
        return found
    return [s for s in found if s["name"] != ANONYMOUS_NAME]


def _all_summaries(args: argparse.Namespace) -> list[dict[str, Any]]:
    ws = workspace(args)
    if not (args.search or args.tag) and ws.is_embedded:
        from kiln.environment.curated import indexed_summaries
        from kiln.registry.fastread import list_summaries

        rows = list_summaries(
            ws.registry_file, all_versions=args.all_versions, include_archived=args.archived
        )
        if rows is not None:
            return ([] if args.no_curated else indexed_summaries()) + rows
    from kiln.environment import catalog

    records = catalog.list_records(
        ws,
        all_versions=args.all_versions,
        include_archived=args.archived,
        name_contains=args.search,
        tags=_tags(args.tag),
        include_curated=not args.no_curated,
    )
    return [r.summary() for r in records]


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


def _redacted_variables(variables: dict[str, str]) -> dict[str, str]:
    from kiln.secrets import shown_value

    return {k: shown_value(k, v) or "" for k, v in variables.items()}


def show(args: argparse.Namespace) -> int:
    from kiln.environment import catalog
    from kiln.formats import kiln_yaml

    ws = workspace(args)
    name, version = catalog.parse_reference(args.reference)
    record = catalog.get(ws, name, version)
    shared = catalog.same_build(ws, record)
    definition = record.definition
    build_info = None
    if args.build:
        from kiln.cli.build_cmds import show_build

        build_info = show_build(args, record)
    runs = _runs_of(ws, record) if args.runs else None
    if args.json:
        data: dict[str, Any] = record.summary()
        body = kiln_yaml.to_data(definition)
        body["environment_variables"] = _redacted_variables(definition.environment_variables)
        data.update(same_build_as=shared, definition=body)
        if build_info is not None:
            data["build"] = build_info
        if runs is not None:
            data["runs"] = runs
        emit_json(data)
        return 0
    python, docker = definition.python, definition.docker
    emit_fields(
        [
            ("name", record.name),
            ("version", record.version),
            ("description", record.description),
            (
                "status",
                "curated (read-only)"
                if record.curated
                else "archived"
                if record.archived
                else "active",
            ),
            (
                "registered",
                record.created_at.isoformat(timespec="seconds") if record.created_at else None,
            ),
            ("tags", record.tags),
            ("build hash", record.build_hash),
            ("definition digest", record.definition_digest),
            ("same build as", ", ".join(shared) if shared else None),
            ("python", python.version),
            ("user managed", python.interpreter_path if python.user_managed else None),
            ("conda channels", python.conda.channels),
            ("conda packages", python.conda.packages),
            ("pip packages", python.pip.packages),
            ("pip index", python.pip.index_url),
            ("base image", docker.base_image),
            (
                "dockerfile",
                f"(inline, {len(docker.dockerfile.splitlines())} lines)"
                if docker.dockerfile
                else None,
            ),
            ("build context", docker.build_context),
            ("env vars", _redacted_variables(definition.environment_variables)),
            ("inferencing stack", definition.inferencing_stack_version),
        ]
    )
    if build_info is not None:
        from kiln.cli.build_cmds import print_build

        print("build on this machine:")
        print_build(build_info)
    if runs is not None:
        print(f"runs ({len(runs)}):")
        for run in runs:
            print(f"  {run['id']}  {run['status']}  {run['created']}")
    return 0


def _runs_of(ws: Any, record: Any) -> list[dict[str, Any]]:
    """The runs that used this version, newest first (lineage from environment to runs)."""
    import datetime as dt

    from kiln.runs.store import RunStore

    store = RunStore(ws)
    try:
        found = store.find(env_name=record.name, env_version=record.version, limit=1000)
    finally:
        store.close()
    return [
        {
            "id": r.id,
            "experiment": r.experiment,
            "status": r.status,
            "lock_digest": r.lock_digest,
            "created": dt.datetime.fromtimestamp(r.created_at, dt.timezone.utc).isoformat(
                timespec="seconds"
            ),
        }
        for r in found
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
