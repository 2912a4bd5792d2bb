"""Team server benchmark: register, get and list over HTTP on a workspace of 10,000 versions.

Four systems, each seeded with 1,000 names x 10 versions (``--names``, ``--versions``):

- ``kiln-http sqlite`` and ``kiln-http postgres``: ``kiln server --workers N`` on 127.0.0.1
  serving a SQLite workspace, and a scratch PostgreSQL database (``--postgres URL``, default
  ``KILN_TEST_POSTGRES_URL``; made and dropped here), driven over HTTP by httpx (async, one
  keep-alive connection per client) with the admin's bearer token;
- ``local core``: the same core calls the routes make (``catalog.register`` +
  ``same_build``, ``envdetail.shown(catalog.get(...))``, ``envlist.list_versions``), in
  this process on a copy of the seeded SQLite workspace, one thread per client, no HTTP;
- ``fastapi hello``: a bare FastAPI route answering a constant on uvicorn with ``kiln
  server``'s settings, every operation being that one GET: the floor this machine and
  framework set for any of the rows above (``--no-hello`` leaves it out);
- ``mlflow``: MLflow's tracking server (``mlflow server --workers N``, SQLite backend) doing
  its nearest equivalents: create a model version of an existing registered model, get a model
  version, search registered models (1,000 per page, each with its latest versions). MLflow
  is not a Kiln dependency: ``--mlflow PATH`` or ``KILN_BENCH_MLFLOW`` names a venv's
  ``mlflow`` (or ``--no-mlflow``).

The operations: register a new version (new content of an existing name, so every call
writes), get one version (``NAME:5``), list the 1,000 latest versions (one page of 1,000).
Each is a closed loop of 1, 8 and 32 clients (``--concurrency``) for ``--seconds`` after a
warm-up (a client whose requests are slower than that goes on until one is timed); the
systems take turns within every (operation, concurrency) cell, and the cells are repeated
``--rounds`` times; a table shows the median round (by requests per second) with its p50, p99
and requests per second, and the ratio to MLflow at the highest concurrency.
Registers grow every workspace a little during the run (a few thousand versions); the list
stays 1,000 names. Artifact throughput is measured once the artifact store lands.

Goals (issue 12): get p99 under 20 ms at 32 clients; listing 1,000 latest versions under
100 ms (p50 of one client). Load averages are printed with the numbers: the machine is shared.

Run: ``python bench/server.py [--quick] [--rounds 3] [--seconds 3] [--workers 1]
[--mlflow PATH | --no-mlflow] [--postgres URL | --no-postgres]``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _serverseed as servers
from registry import seed

OPERATIONS = {
    "register": "register a new version (kiln: POST /environments; mlflow: model-versions/create)",
    "get": "get NAME:5 (kiln: GET /environments/NAME/versions/5; mlflow: model-versions/get)",
    "list": "list 1,000 latest (kiln: GET /environments?limit=1000; "
    "mlflow: registered-models/search?max_results=1000)",
}
GET_VERSION = "5"
GET_P99_GOAL_MS, LIST_GOAL_MS = 20.0, 100.0

Request = tuple[str, str, Any]  # method, path, JSON body or None
Result = dict[str, float]


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def load_text() -> str:
    return "/".join(f"{value:.2f}" for value in os.getloadavg())


def definition_data(name: str, serial: int) -> dict[str, Any]:
    """New content for ``name``: a new version on every register."""
    packages = ["numpy==2.4.6", f"pkg-{name}=={serial}.0"]
    return {"name": name, "python": {"version": "3.11", "pip": {"packages": packages}}}


def summary(latencies: list[float], errors: int, wall: float, cpu: float) -> Result:
    latencies.sort()

    def pick(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1e3 if latencies else 0

    return {
        "rps": len(latencies) / wall,
        "p50_ms": pick(0.50),
        "p99_ms": pick(0.99),
        "errors": errors,
        "client_cpu": cpu / wall,
    }


@dataclass
class System:
    """One row of the tables: ``request`` (HTTP) or ``call`` (in-process) per operation;
    each gets (client index, iteration, serial) and the serial is unique per system."""

    label: str
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    request: dict[str, Callable[[int, int, int], Request]] = field(default_factory=dict)
    call: dict[str, Callable[[int, int, int], object]] = field(default_factory=dict)
    serials: Iterator[int] = field(default_factory=lambda: itertools.count(1_000_000))

    def measure(self, operation: str, clients: int, seconds: float, warmup: float) -> Result:
        if operation in self.call:
            return self._threads(self.call[operation], clients, seconds, warmup)
        return asyncio.run(self._http(self.request[operation], clients, seconds, warmup))

    async def _http(
        self, make: Callable[[int, int, int], Request], clients: int, seconds: float, warmup: float
    ) -> Result:
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        latencies: list[float] = []
        errors = 0
        async with httpx.AsyncClient(
            base_url=self.url, headers=self.headers, limits=limits, timeout=120
        ) as client:
            start_at = time.perf_counter() + warmup
            end_at = start_at + seconds

            async def loop(index: int) -> None:
                nonlocal errors
                timed = False
                for iteration in itertools.count():
                    began = time.perf_counter()
                    if began >= end_at and timed:  # one timed request per client even when slow
                        return
                    timed = began >= start_at
                    method, path, body = make(index, iteration, next(self.serials))
                    try:
                        answer = await client.request(method, path, json=body)
                        ok = answer.status_code < 300
                    except httpx.HTTPError:
                        ok = False
                    if timed:
                        if ok:
                            latencies.append(time.perf_counter() - began)
                        else:
                            errors += 1

            await asyncio.sleep(0)
            cpu = time.process_time()
            await asyncio.gather(*(loop(i) for i in range(clients)))
            used = time.process_time() - cpu
        return summary(latencies, errors, max(time.perf_counter(), end_at) - start_at, used)

    def _threads(
        self, call: Callable[[int, int, int], object], clients: int, seconds: float, warmup: float
    ) -> Result:
        latencies: list[float] = []
        errors = [0]
        start_at = time.perf_counter() + warmup
        end_at = start_at + seconds

        def loop(index: int) -> None:
            timed = False
            for iteration in itertools.count():
                began = time.perf_counter()
                if began >= end_at and timed:  # one timed request per client even when slow
                    return
                timed = began >= start_at
                try:
                    call(index, iteration, next(self.serials))
                    ok = True
                except Exception:  # counted as an error, as HTTP errors are
                    ok = False
                if timed:
                    if ok:
                        latencies.append(time.perf_counter() - began)
                    else:
                        errors[0] += 1

        threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
        cpu = time.process_time()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = max(time.perf_counter(), end_at) - start_at
        return summary(latencies, errors[0], wall, time.process_time() - cpu)


def spread(names: int) -> Callable[[int, int], str]:
    """The name a client asks for: clients walk the names from different places."""
    return lambda index, iteration: f"env-{(index * 7919 + iteration) % names:04d}"


def kiln_http(label: str, server: servers.Server, names: int) -> System:
    name = spread(names)
    return System(
        label,
        url=server.url,
        headers={"Authorization": f"Bearer {server.token}"},
        request={
            "register": lambda i, j, n: (
                "POST",
                "/api/v1/environments",
                definition_data(name(i, j), n),
            ),
            "get": lambda i, j, n: (
                "GET",
                f"/api/v1/environments/{name(i, j)}/versions/{GET_VERSION}",
                None,
            ),
            "list": lambda i, j, n: ("GET", "/api/v1/environments?limit=1000", None),
        },
    )


def local_core(workspace: Any, names: int) -> System:
    """What the routes call, minus HTTP: the same functions on a local workspace."""
    from kiln import catalog
    from kiln.envdetail import shown
    from kiln.envlist import list_versions
    from kiln.formats.kiln_yaml import from_data

    name = spread(names)

    def register(i: int, j: int, n: int) -> object:
        parsed = from_data(definition_data(name(i, j), n), source="the benchmark")
        result = catalog.register(workspace, parsed)
        return catalog.same_build(workspace, result.record)

    return System(
        "local core",
        call={
            "register": register,
            "get": lambda i, j, n: shown(
                workspace, catalog.get(workspace, name(i, j), GET_VERSION)
            ),
            "list": lambda i, j, n: list_versions(workspace)[:1000],
        },
    )


def hello_http(server: servers.Server) -> System:
    """The framework's floor: every operation is one GET of a constant answer."""

    def hello(index: int, iteration: int, serial: int) -> Request:
        return ("GET", "/hello", None)

    return System("fastapi hello", url=server.url, request=dict.fromkeys(OPERATIONS, hello))


def mlflow_http(server: servers.Server, names: int) -> System:
    name = spread(names)
    api = "/api/2.0/mlflow"
    return System(
        "mlflow",
        url=server.url,
        request={
            "register": lambda i, j, n: (
                "POST",
                f"{api}/model-versions/create",
                {"name": name(i, j), "source": f"s3://bench/{name(i, j)}/{n}"},
            ),
            "get": lambda i, j, n: (
                "GET",
                f"{api}/model-versions/get?name={name(i, j)}&version={GET_VERSION}",
                None,
            ),
            "list": lambda i, j, n: (
                "GET",
                f"{api}/registered-models/search?max_results=1000",
                None,
            ),
        },
    )


Results = dict[tuple[str, str, int], list[Result]]


def check_answers(systems: list[System]) -> None:
    """One request of each kind before timing: a system that answers errors fails loudly."""
    for system in systems:
        for operation in OPERATIONS:
            if operation in system.call:
                system.call[operation](0, 0, next(system.serials))
                continue
            method, path, body = system.request[operation](0, 0, next(system.serials))
            answer = httpx.request(
                method, system.url + path, json=body, headers=system.headers, timeout=120
            )
            if answer.status_code >= 300:
                sys.exit(f"{system.label} {operation}: {answer.status_code} {answer.text[:300]}")


def run_rounds(systems: list[System], args: argparse.Namespace) -> Results:
    results: Results = {}
    for round_number in range(1, args.rounds + 1):
        say(f"round {round_number}/{args.rounds}; load average {load_text()}")
        for operation in args.only:
            for clients in args.concurrency:
                for system in systems:  # turns within the cell: drift hits every system alike
                    found = system.measure(operation, clients, args.seconds, args.warmup)
                    results.setdefault((operation, system.label, clients), []).append(found)
                    say(
                        f"  {operation:<8} {clients:>2} clients {system.label:<18} "
                        f"p50 {found['p50_ms']:7.2f} ms  p99 {found['p99_ms']:7.2f} ms  "
                        f"{found['rps']:7.0f} req/s  errors {found['errors']:.0f}"
                    )
    return results


def median_round(runs: list[Result]) -> Result:
    return sorted(runs, key=lambda r: r["rps"])[(len(runs) - 1) // 2]


def print_tables(systems: list[System], results: Results, concurrency: list[int]) -> None:
    top = concurrency[-1]
    for operation, title in OPERATIONS.items():
        if (operation, systems[0].label, top) not in results:
            continue
        cells = "".join(f" {c:>2}: p50 ms | p99 ms |   req/s |" for c in concurrency)
        header = f"| {'system':<18} |{cells} req/s vs mlflow @{top} | errors | client CPU |"
        print(f"\n{title}\n{header}")
        print("|" + "|".join("-" * len(c) for c in header.split("|")[1:-1]) + "|")
        base = results.get((operation, "mlflow", top))
        for system in systems:
            runs = [median_round(results[operation, system.label, c]) for c in concurrency]
            parts = "".join(
                f" {r['p50_ms']:>10.2f} | {r['p99_ms']:>6.2f} | {r['rps']:>7.0f} |" for r in runs
            )
            peer = median_round(base)["rps"] if base else 0.0
            ratio = f"{runs[-1]['rps'] / peer:.2f}x" if peer else "-"
            errors = sum(
                r["errors"] for c in concurrency for r in results[operation, system.label, c]
            )
            cpu = max(r["client_cpu"] for r in runs)
            print(f"| {system.label:<18} |{parts} {ratio:>19} | {errors:>6.0f} | {cpu:>10.2f} |")


def goal_lines(systems: list[System], results: Results, concurrency: list[int]) -> list[str]:
    lines = []
    for system in systems:
        if not system.label.startswith("kiln-http"):
            continue
        verdicts = []
        if 32 in concurrency and ("get", system.label, 32) in results:
            p99 = median_round(results["get", system.label, 32])["p99_ms"]
            rps = median_round(results["get", system.label, 32])["rps"]
            verdicts.append(
                f"get p99 @32 {p99:.1f} ms at {rps:.0f} req/s (goal < {GET_P99_GOAL_MS:.0f}; "
                f"a closed loop of 32 needs >= {32_000 / GET_P99_GOAL_MS:.0f} req/s for it): "
                + ("met" if p99 < GET_P99_GOAL_MS else "MISSED")
            )
        if 1 in concurrency and ("list", system.label, 1) in results:
            p50 = median_round(results["list", system.label, 1])["p50_ms"]
            verdicts.append(
                f"list 1,000 p50 @1 {p50:.1f} ms (goal < {LIST_GOAL_MS:.0f}): "
                + ("met" if p50 < LIST_GOAL_MS else "MISSED")
            )
        lines.append(f"goals, {system.label}: " + "; ".join(verdicts))
    floor = results.get(("get", "fastapi hello", 32))
    if floor:
        found = median_round(floor)
        lines.append(
            f"floor, a bare FastAPI route on this machine @32: p99 {found['p99_ms']:.1f} ms at "
            f"{found['rps']:.0f} req/s"
        )
    lines.append(
        "goal, uploads >= 80% of direct S3 throughput: not measured; artifact throughput is "
        "measured once the artifact store lands"
    )
    return lines


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 names x 10, 1 round of 1 s")
    parser.add_argument("--names", type=int, help="names to seed (default 1,000; --quick 100)")
    parser.add_argument("--versions", type=int, default=10, help="versions per name")
    parser.add_argument("--rounds", type=int, help="rounds of every cell (default 3; --quick 1)")
    parser.add_argument("--seconds", type=float, help="timed seconds per cell (default 3)")
    parser.add_argument("--warmup", type=float, default=0.5, help="untimed seconds per cell")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated client counts")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument("--mlflow", metavar="PATH", help="a venv's mlflow (or KILN_BENCH_MLFLOW)")
    parser.add_argument("--no-mlflow", action="store_true", help="leave MLflow out")
    parser.add_argument("--postgres", metavar="URL", help="PostgreSQL server to make a DB on")
    parser.add_argument("--no-postgres", action="store_true", help="leave PostgreSQL out")
    parser.add_argument("--no-hello", action="store_true", help="leave the bare FastAPI out")
    parser.add_argument(
        "--only",
        metavar="OPS",
        default=",".join(OPERATIONS),
        help="comma-separated operations to time (default: register,get,list)",
    )
    args = parser.parse_args(argv)
    args.names = args.names or (100 if args.quick else 1000)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.seconds = args.seconds or (1.0 if args.quick else 3.0)
    args.concurrency = sorted(int(c) for c in args.concurrency.split(","))
    args.only = [o for o in OPERATIONS if o in args.only.split(",")]
    args.postgres = (
        None if args.no_postgres else args.postgres or os.environ.get("KILN_TEST_POSTGRES_URL")
    )
    return args


def seeded(root: Path, args: argparse.Namespace, database_url: str | None = None) -> Any:
    from kiln.workspace import Workspace

    os.environ["KILN_CACHE_DIR"] = str(root / "cache")
    started = time.perf_counter()
    workspace = Workspace.create(root, database_url=database_url)
    seed(workspace, names=args.names, versions=args.versions)
    what = "PostgreSQL" if database_url else "SQLite"
    say(
        f"seeded {args.names * args.versions:,} versions ({what}) in {time.perf_counter() - started:.1f} s"
    )
    return workspace


def start_systems(stack: ExitStack, root: Path, args: argparse.Namespace) -> list[System]:
    python = None if args.no_mlflow else servers.mlflow_python(args.mlflow)
    sqlite = seeded(root / "sqlite", args)
    sqlite.close()
    shutil.copytree(root / "sqlite", root / "local")
    from kiln.workspace import Workspace

    local = Workspace(root / "local")
    stack.callback(local.close)
    where = ["--workspace", str(root / "sqlite")]
    sqlite_server = stack.enter_context(
        servers.kiln_server(root, where, args.workers, root / "sqlite.log")
    )
    systems = [kiln_http("kiln-http sqlite", sqlite_server, args.names)]
    if args.postgres:
        url = stack.enter_context(servers.scratch_postgres(args.postgres))
        seeded(root / "pg-seed", args, url).close()
        where = ["--database-url", url]
        pg_server = stack.enter_context(
            servers.kiln_server(root, where, args.workers, root / "pg.log")
        )
        systems.append(kiln_http("kiln-http postgres", pg_server, args.names))
    systems.append(local_core(local, args.names))
    if not args.no_hello:
        hello = stack.enter_context(servers.hello_server(root, args.workers, root / "hello.log"))
        systems.append(hello_http(hello))
    if python is not None:
        started = time.perf_counter()
        mlflow = stack.enter_context(
            servers.mlflow_server(
                python, root, args.names, args.versions, args.workers, root / "mlflow.log"
            )
        )
        say(f"MLflow seeded and started in {time.perf_counter() - started:.1f} s")
        systems.append(mlflow_http(mlflow, args.names))
    return systems


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = load_text()
    with tempfile.TemporaryDirectory(prefix="kiln-bench-server-") as folder, ExitStack() as stack:
        systems = start_systems(stack, Path(folder), args)
        check_answers(systems)
        results = run_rounds(systems, args)
    print(
        f"Team server benchmark: {args.names * args.versions:,} versions over {args.names:,} names; "
        f"{args.workers} server worker(s); median of {args.rounds} round(s) of {args.seconds:g} s "
        f"per cell; {os.cpu_count()} CPUs; load average {load_before} at the start, "
        f"{load_text()} at the end"
    )
    print_tables(systems, results, args.concurrency)
    print()
    for line in goal_lines(systems, results, args.concurrency):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
