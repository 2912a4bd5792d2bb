"""Read-only ``kiln env`` commands: list, show, hash, diff, lint, schema."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from kiln.cli.common import existing_workspace, load_source, path_or_reference
from kiln.cli.output import emit_fields, emit_json, emit_table


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


def _redacted_variables(variables: dict[str, str]) -> dict[str, str]:
    from kiln.secrets import shown_value

    return {k: shown_value(k, v) or "" for k, v in variables.items()}


def show(args: argparse.Namespace) -> int:
    from kiln import catalog

    ws = existing_workspace(args)
    name, version = catalog.parse_reference(args.reference)
    record = catalog.get(ws, name, version)
    shared = catalog.same_build(ws, record)
    build_info = None
    if args.build:
        from kiln.cli.build_cmds import show_build

        build_info = show_build(args, record)
    runs = None
    if args.runs:
        from kiln.lineage import runs_of

        runs = runs_of(ws, record.name, record.version)
    if args.json:
        from kiln.formats import kiln_yaml

        data: dict[str, Any] = record.summary()
        body = kiln_yaml.to_data(record.definition)
        body["environment_variables"] = _redacted_variables(record.definition.environment_variables)
        conda = body.get("python", {}).get("conda", {})
        if conda.get("channels"):  # an old record may still hold a channel password
            conda["channels"] = _redacted_channels(conda["channels"])
        data.update(same_build_as=shared, definition=body)
        if build_info is not None:
            data["build"] = build_info
        if runs is not None:
            data["runs"] = runs
        emit_json(data)
        return 0
    emit_fields(_shown_fields(record, shared))
    if build_info is not None:
        from kiln.cli.build_cmds import print_build

        print("build on this machine:")
        print_build(build_info)
    if runs is not None:
        print(f"runs ({len(runs)}):")
        for run in runs:
            print(f"  {run['id']}  {run['status']}  {run['created_at']}")
    return 0


def _redacted_channels(channels: list[str]) -> list[str]:
    from kiln.secrets import redact

    return [redact(channel) for channel in channels]


def _status(record: Any) -> str:
    return "curated (read-only)" if record.curated else "archived" if record.archived else "active"


def _shown_fields(record: Any, shared: list[str]) -> list[tuple[str, Any]]:
    definition = record.definition
    python, docker = definition.python, definition.docker
    dockerfile = docker.dockerfile
    return [
        ("name", record.name),
        ("version", record.version),
        ("description", record.description),
        ("status", _status(record)),
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
        ("conda channels", _redacted_channels(python.conda.channels)),
        ("conda packages", python.conda.packages),
        ("pip packages", python.pip.packages),
        ("pip index", python.pip.index_url),
        ("base image", docker.base_image),
        ("dockerfile", f"(inline, {len(dockerfile.splitlines())} lines)" if dockerfile else None),
        ("build context", docker.build_context),
        ("env vars", _redacted_variables(definition.environment_variables)),
        ("inferencing stack", definition.inferencing_stack_version),
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
