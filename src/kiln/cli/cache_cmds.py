"""``kiln cache list|gc|verify``: the machine-local build cache."""

from __future__ import annotations

import argparse
import datetime as dt
import re
from typing import Any

from kiln.cli.common import workspace
from kiln.cli.output import emit_json, emit_table

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
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=list_)
    p = commands.add_parser("gc", help="remove least recently used builds (never ones in use)")
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
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=gc)
    p = commands.add_parser("verify", help="re-run the health check of every build")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=verify)


def _records_by_build(args: argparse.Namespace) -> dict[str, list[Any]]:
    """build hash -> the versions (registered and curated) that use it."""
    from kiln.environment import catalog

    records = catalog.list_records(workspace(args), all_versions=True, include_archived=True)
    users: dict[str, list[Any]] = {}
    for record in records:
        users.setdefault(record.build_hash, []).append(record)
    return users


def _entries(args: argparse.Namespace) -> list[Any]:
    from kiln.builds import open_cache

    return open_cache(workspace(args)).entries()


def list_(args: argparse.Namespace) -> int:
    entries, users = _entries(args), _records_by_build(args)
    rows = [
        {
            "key": e.key,
            "environments": [r.reference for r in users.get(e.marker.get("build_hash", ""), [])],
            "size_bytes": e.size,
            "last_used": dt.datetime.fromtimestamp(e.last_used, dt.timezone.utc).isoformat(
                timespec="seconds"
            ),
            "in_use": e.holders,
            "builder": e.marker.get("builder"),
            "python": e.marker.get("python"),
        }
        for e in entries
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
    from kiln.builders.packagecaches import reclaim
    from kiln.builds import open_cache
    from kiln.cache import select_for_gc
    from kiln.errors import InvalidDefinition

    if args.max_size is None and args.older_than is None:
        raise InvalidDefinition("say what to remove: --max-size SIZE and/or --older-than AGE")
    cache = open_cache(workspace(args))
    entries = cache.entries()
    chosen = select_for_gc(entries, max_size=args.max_size, older_than=args.older_than)
    removed = [e for e in chosen if args.dry_run or cache.remove(e.key)]
    if not args.dry_run:
        cache.clean_temporary()
    gone = {e.key for e in removed}
    packages = reclaim(
        cache.root,
        [e.path for e in entries if e.key not in gone],
        dry_run=args.dry_run,
        dropped=[e.path for e in removed],
    )
    builds_freed = sum(e.size for e in removed)
    packages_freed = sum(v or 0 for v in (packages or {}).values())
    if args.json:
        emit_json(
            {
                "removed": [e.key for e in removed],
                "freed_bytes": builds_freed + packages_freed,
                "builds_freed_bytes": builds_freed,
                "package_caches": packages,  # bytes per cache; null: a build is using them
                "dry_run": args.dry_run,
            }
        )
        return 0
    verb = "Would remove" if args.dry_run else "Removed"
    print(f"{verb} {len(removed)} build(s), {human(builds_freed)}")
    if packages is None:
        print("Package caches: in use by a running build; left alone")
        return 0
    parts = [f"{name} {'not estimated' if v is None else human(v)}" for name, v in packages.items()]
    verb = "would free" if args.dry_run else "freed"
    print(f"Package caches {verb} {human(packages_freed)} ({', '.join(parts)})")
    return 0


def verify(args: argparse.Namespace) -> int:
    from kiln import builders
    from kiln.builds import open_cache

    users = _records_by_build(args)
    results = []
    for entry in open_cache(workspace(args)).entries():
        builder = builders.module(str(entry.marker.get("builder")))
        records = users.get(entry.marker.get("build_hash", ""))
        # The full check needs the definition (which packages to import); a build no version
        # uses any more gets the cheap one.
        reason = (
            builder.health_check(entry.path, records[0].definition)
            if records
            else builder.quick_check(entry.path)
        )
        results.append({"key": entry.key, "healthy": reason is None, "problem": reason})
    if args.json:
        emit_json(results)
    else:
        for r in results:
            print(f"{r['key'][:12]}  {'ok' if r['healthy'] else 'BROKEN: ' + str(r['problem'])}")
        print(f"{sum(r['healthy'] for r in results)} of {len(results)} healthy")
    return 0 if all(r["healthy"] for r in results) else 1
