"""Registry benchmark: a workspace with 10,000 versions over 1,000 names.

Prints median latencies of register (unchanged / changed), get, list, diff, and the CLI's
start-up, against the goals from the issue. Run: ``python bench/registry.py [--postgres URL]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from kiln import catalog
from kiln.environment.canonical import build_hash, definition_digest
from kiln.environment.definition import EnvironmentDefinition
from kiln.environment.diff import diff
from kiln.registry.engine import write_transaction
from kiln.registry.queries import insert_version
from kiln.workspace import Workspace

NAMES, VERSIONS = 1_000, 10


def definition(name: str, version: int) -> EnvironmentDefinition:
    packages = [
        "numpy==2.4.6",
        "pandas==3.1.1",
        f"scikit-learn==1.{version}.0",
        f"pkg-{name}=={version}.0",
    ]
    return EnvironmentDefinition.model_validate(
        {
            "name": name,
            "python": {"version": "3.11", "pip": {"packages": packages}},
            "environment_variables": {"V": str(version)},
        }
    )


def seed(ws: Workspace, *, names: int = NAMES, versions: int = VERSIONS) -> None:
    """10,000 versions through the registry's own insert, 100 names per transaction."""
    for start in range(0, names, 100):
        with write_transaction(ws.engine) as connection:
            for n in range(start, min(start + 100, names)):
                for v in range(1, versions + 1):
                    d = definition(f"env-{n:04d}", v)
                    insert_version(
                        connection,
                        name=d.name,
                        version=None,
                        definition_digest=definition_digest(d),
                        build_hash=build_hash(d),
                        definition=catalog._stored_json(d),
                        description=None,
                        tags={"team": f"t{n % 7}"},
                    )


def median_ms(action: Callable[[int], object], repeat: int) -> float:
    times = []
    for i in range(repeat):
        start = time.perf_counter()
        action(i)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def cli_ms(args: list[str], cwd: Path, repeat: int = 10, program: list[str] | None = None) -> float:
    command = program or [sys.executable, "-m", "kiln"]
    # As users run it: with bytecode caches (a sandbox may set PYTHONDONTWRITEBYTECODE).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["KILN_WORKSPACE"] = str(cwd)
    return median_ms(
        lambda _: subprocess.run(
            [*command, *args], cwd=cwd, env=env, capture_output=True, check=True
        ),
        repeat,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--postgres", metavar="URL", help="benchmark a PostgreSQL registry instead of SQLite"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kiln-bench-") as folder:
        ws = Workspace.create(folder, database_url=args.postgres)
        started = time.perf_counter()
        seed(ws)
        print(
            f"seeded {NAMES * VERSIONS:,} versions over {NAMES:,} names in {time.perf_counter() - started:.1f} s "
            f"({'PostgreSQL' if args.postgres else 'SQLite'})\n"
        )
        rows = [
            (
                "register, unchanged",
                median_ms(
                    lambda i: catalog.register(ws, definition(f"env-{i % NAMES:04d}", 3)), 200
                ),
                None,
            ),
            (
                "register, changed",
                median_ms(lambda i: catalog.register(ws, definition(f"env-{i:04d}", 99)), 200),
                None,
            ),
            (
                "get NAME:VERSION",
                median_ms(lambda i: catalog.get(ws, f"env-{i % NAMES:04d}", "5").definition, 1000),
                5.0,
            ),
            (
                "get latest",
                median_ms(lambda i: catalog.get(ws, f"env-{i % NAMES:04d}").definition, 1000),
                5.0,
            ),
            ("list latest (1,000 names)", median_ms(lambda _: catalog.list_records(ws), 20), 100.0),
            (
                "list all versions (10,000)",
                median_ms(lambda _: catalog.list_records(ws, all_versions=True), 5),
                None,
            ),
            (
                "diff NAME:1 NAME:2",
                median_ms(
                    lambda i: diff(
                        catalog.get(ws, f"env-{i % NAMES:04d}", "1").definition,
                        catalog.get(ws, f"env-{i % NAMES:04d}", "2").definition,
                    ),
                    200,
                ),
                None,
            ),
        ]
        if not args.postgres:
            rows += [
                ("CLI: kiln --help", cli_ms(["--help"], Path(folder)), 150.0),
                ("CLI: kiln env list", cli_ms(["env", "list"], Path(folder)), 400.0),
                (
                    "CLI: kiln env show NAME",
                    cli_ms(["env", "show", "env-0500"], Path(folder)),
                    None,
                ),
                (
                    "CLI: kiln env list --search 05",
                    cli_ms(["env", "list", "--search", "05"], Path(folder)),
                    None,
                ),
            ]
            # What users already run daily, on the same machine, for scale.
            if importlib.util.find_spec("pip") is not None:
                pip = [sys.executable, "-m", "pip"]
                rows += [
                    (
                        "reference: pip --version",
                        cli_ms(["--version"], Path(folder), program=pip),
                        None,
                    ),
                    ("reference: pip list", cli_ms(["list"], Path(folder), program=pip), None),
                ]
        ws.close()
    print(f"{'operation':<32} {'median':>10} {'goal':>10}  result")
    for label, value, goal in rows:
        verdict = "" if goal is None else ("met" if value < goal else "MISSED")
        print(f"{label:<32} {value:>8.2f}ms {f'< {goal:.0f}ms' if goal else '':>10}  {verdict}")


if __name__ == "__main__":
    main()
