"""Web UI benchmark: each page's server time on a workspace of 10,000 versions (1,000 names)
and 10,000 runs (issue 13: every page under 200 ms).

The pages are asked through the ASGI app in this process (httpx's ASGI transport: no
socket, no browser), so the time is the server's: routing, the core calls, the templates.
Requests to the pages are interleaved, one round over every page at a time; the table gives
the median and the 95th percentile of the wall time, and the median CPU time of this process
(what the page costs when the machine is busy with other work). Run: ``python bench/ui.py [--postgres URL] [--rounds N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time

import httpx

from kiln.registry.engine import write_transaction
from kiln.registry.run_queries import insert_metrics, insert_run
from kiln.runs.store import COMPLETED, FAILED, RunRecord
from kiln.workspace import Workspace
from registry import NAMES, VERSIONS, seed  # bench/registry.py: the same 10,000 versions

RUNS, EXPERIMENTS, STEPS = 10_000, 20, 100
GOAL_MS = 200.0


def seed_runs(ws: Workspace) -> str:
    """10,000 finished runs (1 in 50 failed) over 20 experiments, each with a 100-step loss;
    returns the id of one of them."""
    now = time.time() - RUNS
    with write_transaction(ws.engine) as connection:
        for i in range(RUNS):
            record = RunRecord(
                id=f"exp-{i % EXPERIMENTS}_{int(now) + i}_{i:08x}",
                experiment=f"exp-{i % EXPERIMENTS}",
                status=FAILED if i % 50 == 0 else COMPLETED,
                script="train.py",
                arguments=["--seed", str(i)],
                snapshot_digest="0" * 64,
                env_name=f"env-{i % NAMES:04d}",
                env_version=str(1 + i % VERSIONS),
                build_hash="0" * 64,
                compute_target="local",
                created_at=now + i,
                started_at=now + i,
                ended_at=now + i + 30,
                exit_code=1 if i % 50 == 0 else 0,
            )
            insert_run(connection, row=record.to_row())
            metrics = [("loss", str(1.0 / (s + 1)), now + i + s) for s in range(STEPS)]
            insert_metrics(connection, run_id=record.id, metrics=metrics)
    return record.id


def pages(run_id: str) -> dict[str, str]:
    return {
        "environments, page 1": "/environments",
        "environments, page 15": "/environments?page=15",
        "environments, search": "/environments?search=env-09",
        "environments, tag": "/environments?tag=team%3Dt3",
        "version + diff": "/environments/env-0500/versions/5?against=env-0500:4",
        "runs, page 1": "/runs",
        "runs, page 20": "/runs?page=20",
        "runs, experiment": "/runs?experiment=exp-7",
        "runs, environment": "/runs?environment=env-0001",
        "runs, status Failed": "/runs?status=Failed",
        "run + 100-step chart": f"/runs/{run_id}",
        "models": "/models",
        "deployments": "/deployments",
        "audit": "/audit",
    }


async def measure(ws: Workspace, run_id: str, rounds: int) -> dict[str, list[tuple[float, float]]]:
    from kiln.server.app import create_app
    from kiln.server.ui.local import made_local

    app = made_local(create_app(ws))
    transport = httpx.ASGITransport(app=app)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in pages(run_id)}
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        for round_ in range(rounds + 1):  # the first round warms up and is not counted
            order = list(pages(run_id).items())
            random.Random(round_).shuffle(order)
            for name, path in order:
                started, cpu = time.perf_counter(), time.process_time()
                answer = await client.get(path)
                elapsed = (time.perf_counter() - started) * 1000
                used = (time.process_time() - cpu) * 1000
                assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
                if round_:
                    times[name].append((elapsed, used))
    return times


def table(times: dict[str, list[tuple[float, float]]]) -> str:
    lines = [
        "| page | median ms | p95 ms | CPU ms (median) | goal |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for name, samples in times.items():
        walls = sorted(wall for wall, _ in samples)
        p95 = walls[min(len(walls) - 1, int(len(walls) * 0.95))]
        cpu = statistics.median(used for _, used in samples)
        verdict = "met" if p95 < GOAL_MS else "MISSED"
        lines.append(
            f"| {name} | {statistics.median(walls):.1f} | {p95:.1f} | {cpu:.1f} "
            f"| p95 < {GOAL_MS:.0f} ms: {verdict} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL registry instead")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kiln-bench-ui-") as folder:
        ws = Workspace.create(folder, database_url=args.postgres)
        started = time.perf_counter()
        seed(ws)
        run_id = seed_runs(ws)
        kind = "PostgreSQL" if args.postgres else "SQLite"
        print(
            f"seeded {NAMES * VERSIONS:,} versions and {RUNS:,} runs ({STEPS} metric values "
            f"each) in {time.perf_counter() - started:.1f} s ({kind}); {args.rounds} rounds; "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n"
        )
        print(table(asyncio.run(measure(ws, run_id, args.rounds))))
        ws.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
