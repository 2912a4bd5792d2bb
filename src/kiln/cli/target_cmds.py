"""``kiln target ...``: named compute targets (a Ray cluster by name, ...)."""

from __future__ import annotations

import argparse
from typing import Any

from kiln.cli.common import existing_workspace, workspace
from kiln.cli.output import add_json, emit_json, emit_table


def add_parser(groups: Any) -> None:
    targets = groups.add_parser(
        "target", help="named compute targets (Ray clusters, container engines with options)"
    )
    commands = targets.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    p = commands.add_parser(
        "add",
        help="name a target: kiln target add NAME ray://HOST:PORT, or "
        "container://[CONNECTION][?gpus=all|0,1] (a podman remote connection; GPUs through CDI)",
    )
    p.add_argument("name")
    p.add_argument("address", metavar="ADDRESS")
    p.set_defaults(handler=target_add)
    p = commands.add_parser("list", help="list named targets")
    add_json(p, "compute-target-list")
    p.set_defaults(handler=target_list)
    p = commands.add_parser("remove", help="forget a named target")
    p.add_argument("name")
    p.set_defaults(handler=target_remove)


def target_add(args: argparse.Namespace) -> int:
    from kiln.runs import core

    core.add_target(workspace(args), name=args.name, address=args.address)
    print(f"target {args.name} -> {args.address}")
    return 0


def target_list(args: argparse.Namespace) -> int:
    from kiln.runs import core

    found = core.list_targets(existing_workspace(args))
    if args.json:
        emit_json(found)
    else:
        emit_table(
            ["name", "kind", "address"], [(t["name"], t["kind"], t["address"]) for t in found]
        )
    return 0


def target_remove(args: argparse.Namespace) -> int:
    from kiln.runs import core

    core.remove_target(workspace(args), name=args.name)
    print(f"removed target {args.name}")
    return 0
