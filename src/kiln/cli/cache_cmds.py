"""``kiln cache list|gc|verify``: the machine-local build cache."""

from __future__ import annotations

import argparse
import datetime as dt
import re
from typing import TYPE_CHECKING, Any

from kiln.cli.common import existing_workspace, workspace
from kiln.cli.output import add_json, emit_json, emit_table

if TYPE_CHECKING:
    from kiln.cache import Cache
    from kiln.workspace import Workspace

_SIZE = re.compile(r"^\s*([0-9.]+)\s*([kmgt]?)i?b?\s*$", re.I)
_AGE = re.compile(r"^\s*([0-9.]+)\s*([smhdw])\s*$", re.I)


def parse_size(text: str) -> int:
    match = _SIZE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size; write e.g. 500M or 20G")
    return int(float(match.group(1)) * 1024 ** " kmgt".index(match.group(2).lower() or " "))


def parse_age(text: str) -> float:
    match = _AGE.match(text)
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not an age; write e.g. 12h, 7d or 2w")
    return (
        float(match.group(1))
        * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2).lower()]
    )


def human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def add_parser(groups: Any) -> None:
    cache = groups.add_parser(
        "cache",
        help="the machine-local cache of built environments",
        description="List, clean and verify built environments on this machine.",
    )
    commands = cache.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    p = commands.add_parser("list", help="built environments, least recently used first")
    add_json(p, "cache-entry-list")
    p.set_defaults(handler=list_)
    p = commands.add_parser(
        "gc",
        help="remove least recently used builds (never ones in use)",
        description="Remove builds by --max-size and/or --older-than, least recently used "
        "first, never one in use; with neither, no build goes. Either way, what the package "
        "caches hold for no remaining build is freed.",
    )
    p.add_argument(
        "--max-size", type=parse_size, metavar="SIZE", help="keep the cache under SIZE (e.g. 20G)"
    )
    p.add_argument(
        "--older-than",
        type=parse_age,
        metavar="AGE",
        help="remove builds unused for AGE (e.g. 14d)",
    )
    p.add_argument("--dry-run", action="store_true", help="say what would go, remove nothing")
    add_json(p, "gc-report")
    p.set_defaults(handler=gc)
    p = commands.add_parser("verify", help="re-run the health check of every build")
    add_json(p, "health-result-list")
    p.set_defaults(handler=verify)


def _cache(ws: Workspace) -> Cache:
    from kiln.builds import open_cache

    return open_cache(ws)


def list_(args: argparse.Namespace) -> int:
    from kiln.cachegc import cached_builds

    ws = existing_workspace(args)
    rows: list[dict[str, Any]] = [
        {
            "key": b.entry.key,
            "environments": b.environments,
            "size_bytes": b.entry.size,
            "last_used": dt.datetime.fromtimestamp(b.entry.last_used, dt.timezone.utc).isoformat(
                timespec="seconds"
            ),
            "in_use": b.entry.holders,
            "builder": b.entry.marker.get("builder"),
            "python": b.entry.marker.get("python"),
        }
        for b in cached_builds(ws, _cache(ws))
    ]
    if args.json:
        emit_json(rows)
        return 0
    emit_table(
        ["key", "environments", "size", "last used", "in use"],
        [
            (
                r["key"][:12],
                ", ".join(r["environments"][:3]) or "-",
                human(r["size_bytes"]),
                r["last_used"][:16].replace("T", " "),
                r["in_use"] or "",
            )
            for r in rows
        ],
    )
    print(f"total {human(sum(r['size_bytes'] for r in rows))} in {len(rows)} build(s)")
    return 0


def gc(args: argparse.Namespace) -> int:
    from kiln.cachegc import collect

    report = collect(
        _cache(workspace(args)),
        max_size=args.max_size,
        older_than=args.older_than,
        dry_run=args.dry_run,
    )
    if args.json:
        emit_json(
            {
                "removed": [e.key for e in report.removed],
                "freed_bytes": report.freed_bytes,
                "builds_freed_bytes": report.builds_freed_bytes,
                "package_caches": report.package_caches,  # bytes per cache; null: in use
                "dry_run": report.dry_run,
            }
        )
        return 0
    verb = "Would remove" if args.dry_run else "Removed"
    print(f"{verb} {len(report.removed)} build(s), {human(report.builds_freed_bytes)}")
    if report.package_caches is None:
        print("Package caches: in use by a running build; left alone")
        return 0
    parts = [
        f"{name} {'not estimated' if v is None else human(v)}"
        for name, v in report.package_caches.items()
    ]
    verb = "would free" if args.dry_run else "freed"
    print(f"Package caches {verb} {human(report.package_caches_freed_bytes)} ({', '.join(parts)})")
    return 0


def verify(args: argparse.Namespace) -> int:
    from kiln.cachegc import verify as verify_builds

    ws = existing_workspace(args)
    results = verify_builds(ws, _cache(ws))
    if args.json:
        emit_json([{"key": r.key, "healthy": r.healthy, "problem": r.problem} for r in results])
    else:
        for r in results:
            print(f"{r.key[:12]}  {'ok' if r.healthy else 'BROKEN: ' + str(r.problem)}")
        print(f"{sum(r.healthy for r in results)} of {len(results)} healthy")
    return 0 if all(r.healthy for r in results) else 1
