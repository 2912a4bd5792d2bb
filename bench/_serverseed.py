"""The servers bench/server.py measures, seeded to the same size, each stopped by its PID.

- Kiln's registry is seeded through the registry's own insert (bench/registry.py's ``seed``:
  1,000 names x 10 versions, 1,000 per transaction), on SQLite or on a scratch PostgreSQL
  database made here and dropped afterwards.
- ``kiln server`` runs as a user would start it (``python -m kiln server``), after
  ``kiln server create-admin`` gave its token.
- ``fastapi hello``: one FastAPI route answering a constant (bench/_hello.py) on uvicorn,
  started as ``kiln server`` starts it: what the framework alone reaches on this machine.
- MLflow's tracking server (``mlflow server``, SQLite backend) runs from a separate
  interpreter that has ``mlflow`` (it is not a Kiln dependency); its registry is seeded through
  MLflow's own ORM classes in one session (the equivalent of Kiln's seed): one registered model
  per name, ten model versions each.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import httpx

HOST = "127.0.0.1"
KILN = [sys.executable, "-m", "kiln"]

MLFLOW_SEED = """
import sys, time
from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore
from mlflow.store.model_registry.dbmodels.models import SqlModelVersion, SqlRegisteredModel

store = SqlAlchemyStore(sys.argv[1])
names, versions = int(sys.argv[2]), int(sys.argv[3])
now = int(time.time() * 1000)
with store.ManagedSessionMaker() as session:
    for n in range(names):
        name = f"env-{n:04d}"
        session.add(SqlRegisteredModel(name=name, creation_time=now, last_updated_time=now))
        session.flush()
        session.add_all(
            SqlModelVersion(
                name=name, version=v, creation_time=now, last_updated_time=now,
                source=f"s3://bench/{name}/{v}", status="READY", current_stage="None",
            )
            for v in range(1, versions + 1)
        )
"""


class Server(NamedTuple):
    url: str
    token: str | None  # Kiln's admin token; MLflow has no authentication by default
    process: subprocess.Popen[bytes]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def quiet_env(root: Path) -> dict[str, str]:
    """This process's environment with every Kiln and MLflow folder under ``root``."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE",)}
    env.update(
        KILN_CACHE_DIR=str(root / "cache"),
        KILN_CONFIG_DIR=str(root / "config"),
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
        HOME=str(root / "home"),
    )
    return env


@contextmanager
def scratch_postgres(template: str) -> Iterator[str]:
    """A fresh database on the server ``template`` names (password as ${VAR}); dropped after."""
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(os.path.expandvars(template))
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"kiln_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield template.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's own process group (uvicorn's workers with it), then SIGKILL."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _started(command: list[str], env: dict[str, str], log: Path, ready: str) -> Server:
    """Start ``command`` (its ``{port}`` filled in) and wait until ``ready`` answers 200."""
    for _attempt in range(5):  # a port taken between the probe and the bind: try another
        port = free_port()
        url = f"http://{HOST}:{port}"
        with log.open("ab") as sink:
            process = subprocess.Popen(
                [part.replace("{port}", str(port)) for part in command],
                env=env, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if httpx.get(url + ready, timeout=2).status_code == 200:
                    return Server(url, None, process)
            except httpx.HTTPError:
                time.sleep(0.1)
        stop(process)
    raise RuntimeError(f"{command[0]} did not start; its log:\n{log.read_text()[-3000:]}")


@contextmanager
def kiln_server(root: Path, where: list[str], workers: int, log: Path) -> Iterator[Server]:
    """``kiln server`` for the registry ``where`` names (``--workspace PATH`` or
    ``--database-url URL``), its first admin's token with it."""
    env = {**quiet_env(root), "KILN_SERVER_DIR": str(log.with_suffix(".server"))}
    made = subprocess.run(
        [*KILN, "server", "create-admin", "bench", *where, "--json"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    token = json.loads(made.stdout)["token"]
    command = [*KILN, "server", *where, "--host", HOST, "--port", "{port}"]
    server = _started([*command, "--workers", str(workers)], env, log, "/healthz")
    try:
        yield server._replace(token=token)
    finally:
        stop(server.process)


def mlflow_python(option: str | None) -> Path:
    """The interpreter of a venv with mlflow: ``--mlflow`` (its python or its mlflow script)
    or ``KILN_BENCH_MLFLOW``; exits with how to make one when there is none."""
    given = option or os.environ.get("KILN_BENCH_MLFLOW")
    python = Path(given).parent / "python" if given else None
    if python is None or not python.exists():
        sys.exit(
            "MLflow not found: make a venv with it (uv venv /tmp/kiln-bench-mlflow && "
            "uv pip install --python /tmp/kiln-bench-mlflow/bin/python mlflow) and pass "
            "--mlflow /tmp/kiln-bench-mlflow/bin/mlflow (or set KILN_BENCH_MLFLOW), "
            "or leave it out with --no-mlflow"
        )
    return python


@contextmanager
def mlflow_server(
    python: Path, root: Path, names: int, versions: int, workers: int, log: Path
) -> Iterator[Server]:
    """``mlflow server`` on SQLite, seeded with ``names`` x ``versions`` model versions."""
    env = quiet_env(root)
    database = f"sqlite:///{root / 'mlflow.db'}"
    seed = [str(python), "-c", MLFLOW_SEED, database, str(names), str(versions)]
    subprocess.run(seed, env=env, check=True, capture_output=True)
    command = [str(python), "-m", "mlflow", "server", "--backend-store-uri", database]
    command += ["--default-artifact-root", str(root / "mlflow-artifacts")]
    command += ["--host", HOST, "--port", "{port}", "--workers", str(workers)]
    server = _started(command, env, log, "/health")
    try:
        yield server
    finally:
        stop(server.process)


@contextmanager
def hello_server(root: Path, workers: int, log: Path) -> Iterator[Server]:
    """bench/_hello.py on uvicorn with kiln server's settings: the framework's own floor."""
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "_hello:app",
        "--app-dir",
        str(Path(__file__).parent),
    ]
    command += ["--host", HOST, "--port", "{port}", "--workers", str(workers), "--no-access-log"]
    server = _started(command, quiet_env(root), log, "/hello")
    try:
        yield server
    finally:
        stop(server.process)
