"""A real ``kiln server`` subprocess on a free 127.0.0.1 port, for the tests of tests/server.

The server serves a workspace folder (SQLite) or, with ``database_url``, a PostgreSQL registry
kept in a server folder; its first admin is made with ``kiln server create-admin`` as an
operator would. Every response a test receives through ``Team.call`` is kept, so a test can
check that no token leaks into any of them.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from kilntesting.cli import KILN, run_kiln
from kilntesting.images import _stop, free_port  # the registry fixture's own stop


@dataclass
class Team:
    url: str
    admin_token: str
    root: Path  # the test's folder: workspace or server folder, log, config
    env: dict[str, str]  # for CLI calls: KILN_CONFIG_DIR, KILN_SERVER_DIR
    pid: int
    workspace_args: list[str]  # how the CLI names the served registry
    database_url: str | None
    responses: list[str] = field(default_factory=list)

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def call(
        self, method: str, path: str, token: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers.update(kwargs.pop("headers", {}))
        response = httpx.request(method, f"{self.url}{path}", headers=headers, timeout=60, **kwargs)
        self.responses.append(f"{response.headers}\n{response.text}")
        return response

    def machine(self, token: str, data: Path, cache: Path) -> dict[str, str]:
        """The environment of a client machine: this server as its workspace, its own data
        folder (where its runs' folders are) and build cache."""
        return {
            **self.env,
            "KILN_WORKSPACE": self.url,
            "KILN_TOKEN": token,
            "KILN_DATA_DIR": str(data),
            "KILN_CACHE_DIR": str(cache),
        }

    def token(self, owner: str, role: str) -> str:
        """A new token for ``owner`` with ``role``, made by the admin over the API."""
        made = self.call(
            "POST", "/api/v1/tokens", self.admin_token, json={"owner": owner, "role": role}
        )
        assert made.status_code == 201, made.text
        token: str = made.json()["token"]
        return token

    def _engine(self) -> Any:
        from kiln.registry.engine import open_engine
        from kiln.workspace import Workspace

        return open_engine(
            Workspace(self.root / ("server" if self.database_url else "ws")).database_url
        )

    def execute_sql(self, statement: str, **values: Any) -> None:
        """Change the served registry behind the server's back, as a teammate with database
        access could."""
        from sqlalchemy import text

        engine = self._engine()
        try:
            with engine.begin() as connection:
                connection.execute(text(statement), values)
        finally:
            engine.dispose()

    def table_text(self) -> str:
        """Every row of every table of the served registry, as text."""
        from sqlalchemy import MetaData

        engine = self._engine()
        try:
            tables = MetaData()
            tables.reflect(engine)
            with engine.connect() as connection:
                rows = [
                    repr(tuple(row))
                    for table in tables.sorted_tables
                    for row in connection.execute(table.select())
                ]
        finally:
            engine.dispose()
        return "\n".join(rows)

    def send_cut_off(self, path: str, token: str, announced: int, sent: bytes) -> bytes:
        """A real client that announces ``announced`` body bytes for a PUT, sends ``sent``,
        waits half a second (the server stores them meanwhile, or answers early) and closes its
        socket. Returns what the server answered by then (b"" if nothing)."""
        address = urlsplit(self.url)
        with socket.create_connection((address.hostname, address.port)) as raw:
            raw.sendall(
                f"PUT {path} HTTP/1.1\r\nHost: {address.netloc}\r\n"
                f"Authorization: Bearer {token}\r\nContent-Length: {announced}\r\n\r\n".encode()
            )
            raw.sendall(sent)
            raw.settimeout(0.5)
            answer = b""
            try:
                while data := raw.recv(65536):
                    answer += data
            except TimeoutError:
                pass
            return answer

    def up(self) -> bool:
        try:
            return httpx.get(f"{self.url}/healthz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False


def _wait_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> bool:
    """Poll /healthz for up to 30 s; False when the server exited (its port was taken)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    _stop(process)
    raise AssertionError(f"kiln server not ready at {url} in 30 s: {log.read_text()[-3000:]}")


@contextmanager
def team_server(
    root: Path,
    *,
    database_url: str | None = None,
    workers: int = 1,
    artifacts: str | None = None,
    environment: dict[str, str] | None = None,
) -> Iterator[Team]:
    """Create the first admin, start ``kiln server`` and stop it (by its PID) afterwards.
    ``artifacts`` is its ``--artifacts`` URL; ``environment`` adds variables (S3 keys)."""
    env = {"KILN_CONFIG_DIR": str(root / "config"), "KILN_SERVER_DIR": str(root / "server")}
    env.update(environment or {})
    where = ["--database-url", database_url] if database_url else ["--workspace", str(root / "ws")]
    made = run_kiln("server", "create-admin", "admin", *where, "--json", env=env)
    admin_token = json.loads(made.stdout)["token"]
    log = root / "server.log"
    for _attempt in range(5):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        command = [*KILN, "server", *where, "--port", str(port), "--workers", str(workers)]
        command += ["--access-log"]  # the secrecy tests read it: no token in any line
        command += ["--artifacts", artifacts] if artifacts else []
        import os

        with log.open("ab") as sink:
            process = subprocess.Popen(
                command, env={**os.environ, **env}, stdout=sink, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip
        if _wait_ready(process, url, log):
            break
    else:
        raise AssertionError(f"kiln server did not start: {log.read_text()[-3000:]}")
    try:
        yield Team(url, admin_token, root, env, process.pid, where, database_url)
    finally:
        _stop(process)
