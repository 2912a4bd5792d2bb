"""Printing for the CLI: JSON for scripts, aligned plain text for people. No heavy imports."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import argparse


def add_json(parser: argparse.ArgumentParser, schema: str) -> None:
    """``--json``, printing a document of the public schema ``schema`` (see kiln.schemas; the
    tests validate every command's output against it)."""
    parser.add_argument(
        "--json", action="store_true", help=f"print JSON (schema/public/{schema}.schema.json)"
    )
    parser.set_defaults(json_schema=schema)


def emit_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


def emit_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[("" if c is None else str(c)) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    line = "  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=False)).rstrip()
    print(line)
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip())


def emit_fields(pairs: Sequence[tuple[str, Any]]) -> None:
    width = max((len(k) for k, _ in pairs), default=0)
    for key, value in pairs:
        if value is None or value == [] or value == {}:
            continue
        if isinstance(value, list):
            print(f"{key + ':':<{width + 1}}")
            for item in value:
                print(f"  - {item}")
        elif isinstance(value, dict):
            print(f"{key + ':':<{width + 1}}")
            for k, v in value.items():
                print(f"  {k}: {v}")
        else:
            print(f"{key + ':':<{width + 1}} {value}")


def warn(message: str) -> None:
    print(f"kiln: warning: {message}", file=sys.stderr)
