"""The runs store's database for a workspace served by ``kiln server``: each of ``RunQueries`` is
one request to the server, which runs the same query on its registry (server/routes_runs.py)
with the caller's token, so the server decides who may write what. ``finish_run`` is one
request too: the final state and the metrics still commit together, on the server.

Records travel as documents: the stored row with its JSON columns (``arguments``, ``outputs``)
as JSON values rather than text. A run's log text travels in base64 chunks small enough for the
server's request limit (``LogUpload``, ``download_log``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from kiln.errors import Conflict, NotFound

if TYPE_CHECKING:
    from kiln.httpclient import ServerClient
    from kiln.registry.run_database import RunQueries

JSON_COLUMNS = ("arguments", "outputs")
LOG_CHUNK = 2 * 1024 * 1024  # base64 makes it 2.7 MiB: under the server's 4 MiB body limit


def document_of(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored run row as the API sends it."""
    return {k: json.loads(v) if k in JSON_COLUMNS else v for k, v in row.items()}


def row_of(document: Mapping[str, Any]) -> dict[str, Any]:
    """A run document as the registry stores it."""
    return {k: json.dumps(v) if k in JSON_COLUMNS else v for k, v in document.items()}


def record_path(run_id: str, *rest: str) -> str:
    return "/".join(["/run-records", quote(run_id, safe=""), *rest])


def client_for(server_url: str) -> ServerClient:
    from kiln.credentials import login_for
    from kiln.httpclient import ServerClient

    return ServerClient(server_url, login_for(server_url).token)


class ServerRunQueries:
    """``RunQueries`` over the API; the connection each method gets is a ``ServerClient``."""

    def insert_run(self, connection: Any, *, row: Mapping[str, Any]) -> None:
        connection.request("POST", "/run-records", json=document_of(row))

    def get_run(self, connection: Any, *, run_id: str) -> dict[str, Any] | None:
        try:
            return row_of(connection.request("GET", record_path(run_id)))
        except NotFound:
            return None

    def find_runs(
        self,
        connection: Any,
        *,
        experiment: str | None = None,
        env_name: str | None = None,
        env_version: str | None = None,
        status: str | None = None,
        limit: int,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        filters = {
            "experiment": experiment,
            "env_name": env_name,
            "env_version": env_version,
            "status": status,
        }
        params = {k: v for k, v in filters.items() if v is not None}
        paging = {"limit": limit, "offset": offset}
        found = connection.request("GET", "/run-records", params={**params, **paging})
        return [row_of(document) for document in found]

    def update_run(
        self,
        connection: Any,
        *,
        run_id: str,
        values: Mapping[str, Any],
        unless_status: Collection[str] = (),
    ) -> bool:
        body = {"values": document_of(values), "unless_status": sorted(unless_status)}
        return bool(connection.request("PATCH", record_path(run_id), json=body)["changed"])

    def take_over_run(
        self,
        connection: Any,
        *,
        run_id: str,
        old_watcher: str | None,
        new_watcher: str,
        unless_status: Collection[str] = (),
    ) -> bool:
        body = {
            "old_watcher": old_watcher,
            "new_watcher": new_watcher,
            "unless_status": sorted(unless_status),
        }
        answer = connection.request("POST", record_path(run_id, "take-over"), json=body)
        return bool(answer["changed"])

    def insert_metrics(
        self, connection: Any, *, run_id: str, metrics: Sequence[tuple[str, str, float]]
    ) -> None:
        if metrics:
            body = {"metrics": [list(m) for m in metrics]}
            connection.request("POST", record_path(run_id, "metrics"), json=body)

    def list_metrics(self, connection: Any, *, run_id: str) -> list[tuple[str, str]]:
        found = connection.request("GET", record_path(run_id, "metrics"))
        return [(str(name), str(value)) for name, value in found]

    def put_target(
        self,
        connection: Any,
        *,
        name: str,
        kind: str,
        address: str,
        created_at: float,
        created_by: str | None,
    ) -> None:
        # The server checks the address and its kind itself, keeps its own time and records
        # the token's user.
        connection.request("PUT", f"/targets/{quote(name, safe='')}", json={"address": address})

    def list_targets(self, connection: Any) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = connection.request("GET", "/targets")
        return found

    def delete_target(self, connection: Any, *, name: str) -> bool:
        try:
            connection.request("DELETE", f"/targets/{quote(name, safe='')}")
        except NotFound:
            return False
        return True


class ServerRunDatabase:
    """Each read and write is its own request: the server's transaction is the request's."""

    def __init__(self, server_url: str) -> None:
        self.client = client_for(server_url)
        self.queries: RunQueries = ServerRunQueries()

    @contextlib.contextmanager
    def reading(self) -> Iterator[ServerClient]:
        yield self.client

    def writing(self) -> contextlib.AbstractContextManager[ServerClient]:
        return self.reading()

    def close(self) -> None:
        pass

    def finish_run(
        self,
        *,
        run_id: str,
        values: Mapping[str, Any],
        unless_status: Collection[str],
        metrics: Sequence[tuple[str, str, float]],
    ) -> bool:
        body = {
            "values": document_of(values),
            "unless_status": sorted(unless_status),
            "metrics": [list(m) for m in metrics],
        }
        return bool(
            self.client.request("POST", record_path(run_id, "finish"), json=body)["changed"]
        )


class LogUpload:
    """The run's log on its way to the server as it grows: each ``send`` posts what is new since
    the last one; ``send(last=True)`` posts the rest and makes the whole the log the server shows
    (until then it shows what it has, as the live log of a running run)."""

    def __init__(self, server_url: str, run_id: str, log: Path) -> None:
        self.api = client_for(server_url)
        self.run_id, self.log = run_id, log
        self.sent = 0
        self.done = False
        self._lock = threading.Lock()  # the watcher's periodic sends and its last one

    def send(self, *, last: bool) -> None:
        with self._lock:
            if self.done:
                return
            try:
                self._send(last)
            except Conflict:  # a cut-off request the server counted: start over, from 0
                self.sent = 0
                self._send(last)
            self.done = last

    def _send(self, last: bool) -> None:
        with self.log.open("rb") as handle:
            handle.seek(self.sent)
            while True:
                chunk = handle.read(LOG_CHUNK)
                final = last and len(chunk) < LOG_CHUNK
                if chunk or final:
                    body = {
                        "offset": self.sent,
                        "data": base64.b64encode(chunk).decode("ascii"),
                        "last": final,
                    }
                    self.api.request("POST", record_path(self.run_id, "log"), json=body)
                    self.sent += len(chunk)
                if len(chunk) < LOG_CHUNK:
                    return


_UPLOADS: dict[tuple[str, str], LogUpload] = {}


def log_upload(server_url: str, run_id: str, log: Path) -> LogUpload:
    """This process's upload of the run's log (a new process starts it over from byte 0)."""
    key = (server_url, run_id)
    if key not in _UPLOADS:
        _UPLOADS[key] = LogUpload(server_url, run_id, log)
    return _UPLOADS[key]


def finish_log_upload(server_url: str, run_id: str, log: Path) -> None:
    """Send the rest of the run's log and make it the one the server shows."""
    log_upload(server_url, run_id, log).send(last=True)
    _UPLOADS.pop((server_url, run_id), None)


def read_log_from(server_url: str, run_id: str, offset: int) -> bytes:
    """Up to ``LOG_CHUNK`` bytes of the log the server keeps for the run, from ``offset``; none
    when it has no log yet."""
    params = {"offset": offset, "limit": LOG_CHUNK}
    try:
        answer = client_for(server_url).request("GET", record_path(run_id, "log"), params=params)
    except NotFound:
        return b""
    return base64.b64decode(answer["data"])


def download_log(server_url: str, run_id: str, target: Path) -> bool:
    """Write the log the server keeps for the run to ``target``; False when it has none."""
    partial = target.with_name(f".{target.name}.partial")
    with partial.open("wb") as handle:
        while chunk := read_log_from(server_url, run_id, handle.tell()):
            handle.write(chunk)
        size = handle.tell()
    if size == 0:
        partial.unlink()
        return False
    partial.replace(target)  # a cut-off download never passes for the log
    return True
