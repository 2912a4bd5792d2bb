"""``kiln wheel add|list``: wheels stored in the workspace, named ``wheel:FILENAME`` in
definitions."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kiln.cli.common import existing_workspace, workspace
from kiln.cli.output import add_json, emit_json, emit_table


def add_parser(groups: Any) -> None:
    wheel = groups.add_parser(
        "wheel",
        help="store private wheels in the workspace",
        description="Store private wheels in the workspace; definitions name them "
        "wheel:FILENAME in python.pip.packages.",
    )
    commands = wheel.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    p = commands.add_parser("add", help="check a .whl file and store it by its sha256")
    p.add_argument("path", metavar="PATH.whl")
    add_json(p, "wheel-added")
    p.set_defaults(handler=add)

    p = commands.add_parser("list", help="list the stored wheels")
    add_json(p, "wheel-list")
    p.set_defaults(handler=list_)


def add(args: argparse.Namespace) -> int:
    from kiln.wheels import wheel_document
    from kiln.wheelstore import add_wheel

    result = add_wheel(workspace(args), Path(args.path))
    if args.json:
        emit_json({**wheel_document(result.wheel), "added": result.added})
    elif result.added:
        print(f"stored {result.wheel.filename}; name it wheel:{result.wheel.filename}")
    else:
        print(
            f"already stored as {result.wheel.filename} (sha256 {result.wheel.sha256[:12]}); "
            "nothing changed"
        )
    return 0


def list_(args: argparse.Namespace) -> int:
    from kiln.wheels import wheel_document
    from kiln.wheelstore import list_wheels

    rows = list_wheels(existing_workspace(args))
    if args.json:
        emit_json([wheel_document(row) for row in rows])
        return 0
    emit_table(
        ["name", "version", "filename", "sha256", "size"],
        [[r.name, r.version, r.filename, r.sha256[:12], r.size] for r in rows],
    )
    return 0
