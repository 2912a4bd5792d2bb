"""``kiln doctor``: check this machine's container engine, uv, the workspace and its image
registry, and say exactly what to fix. Exit 0 when every check passes, 1 otherwise."""

from __future__ import annotations

import argparse
from typing import Any

from kiln.cli.output import add_json, emit_json

FAILED_EXIT = 1


def add_parser(groups: Any) -> None:
    p = groups.add_parser(
        "doctor",
        help="check the container engine, uv, the workspace and its image registry",
        description=__doc__,
    )
    add_json(p, "doctor-check-list")
    p.set_defaults(handler=doctor)


def doctor(args: argparse.Namespace) -> int:
    from kiln.doctor import run_checks

    checks = run_checks(workspace=args.workspace)
    if args.json:
        emit_json([check.as_dict() for check in checks])
    else:
        for check in checks:
            if check.ok:
                print(f"ok    {check.name}: {check.detail}")
            else:
                print(f"FAIL  {check.name}: {check.detail}; fix: {check.fix}")
    return 0 if all(check.ok for check in checks) else FAILED_EXIT
