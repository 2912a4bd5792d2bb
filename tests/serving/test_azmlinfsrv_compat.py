"""The same score.py served by Kiln's runtime and by the real azmlinfsrv (the
``azureml-inference-server-http`` package in a throwaway venv): same status codes, same bodies,
the same id and failure headers.

Kiln's runtime runs on that venv's interpreter, with Kiln only on PYTHONPATH, as deployments
run it: so this also shows the runtime needs nothing outside the standard library.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from kilntesting.cli import cached_venv
from kilntesting.serving import (
    Reply,
    Runtime,
    azmlinfsrv_baseline,
    send,
    start_runtime,
    write_score,
)

AZMLINFSRV = "azureml-inference-server-http==1.5.1"

SCORE = """\
import json


def init():
    pass


def run(raw_data, request_headers):
    try:
        req = json.loads(raw_data)
    except ValueError:
        return {"type": type(raw_data).__name__, "raw": raw_data}
    kind = req.get("kind") if isinstance(req, dict) else None
    if kind == "dict":
        return {"ok": True, "n": [1, 2.5, None]}
    if kind == "list":
        return [1, "two", 3.0, None]
    if kind == "str":
        return "hello"
    if kind == "none":
        return None
    if kind == "set":
        return {1, 2}
    if kind == "raise":
        raise ValueError("boom")
    if kind == "headers":
        return {"foo": request_headers.get("X-Foo"), "id": request_headers.get("X-Request-Id")}
    return {"type": type(raw_data).__name__, "raw": raw_data}
"""


@pytest.fixture(scope="session")
def azmlinfsrv_python() -> Path:
    """A venv with azmlinfsrv, built once and reused across runs (and xdist workers)."""
    return cached_venv(AZMLINFSRV, "azureml_inference_server_http.amlserver")


class Servers(NamedTuple):
    kiln: int
    azure: int


@pytest.fixture(scope="module")
def servers(azmlinfsrv_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    root = tmp_path_factory.mktemp("compat")
    script = write_score(root / "app", SCORE)
    model = root / "model"
    model.mkdir()
    baseline = azmlinfsrv_baseline()
    port = baseline.free_port()
    azure = baseline.start_azmlinfsrv(
        azmlinfsrv_python, script.parent, "score.py", port, 1, model_dir=model
    )
    try:
        kiln = start_runtime(
            script, log_dir=root / "kiln", model_dir=model, python=str(azmlinfsrv_python)
        )
        try:
            assert kiln.ready, kiln.log()
            yield Servers(kiln.port, port)
        finally:
            kiln.stop()
    finally:
        baseline.stop(azure)


def both(
    servers: Servers, method: str, path: str, body: bytes | None = None, **kw: str
) -> tuple[Reply, Reply]:
    headers = {k.replace("_", "-"): v for k, v in kw.items()}
    return (
        send(servers.kiln, method, path, body, headers),
        send(servers.azure, method, path, body, headers),
    )


def decoded(reply: Reply) -> object:
    if reply.body and reply.headers.get("content-type") == "application/json":
        return json.loads(reply.body)
    return reply.body


CASES = [
    ("GET", "/", None),
    ("POST", "/score", b'{"kind": "dict"}'),
    ("POST", "/score", b'{"kind": "list"}'),
    ("POST", "/score", b'{"kind": "str"}'),
    ("POST", "/score", b'{"kind": "none"}'),
    ("POST", "/score", b"hello text"),
    ("POST", "/score", b""),
    ("GET", "/score?a=1&b=%5B1,2%5D&c=x&c=y", None),
    ("GET", "/score", None),
    ("POST", "/score", b'{"kind": "raise"}'),
    ("POST", "/score", b'{"kind": "set"}'),
    ("POST", "/score", b"\xff\xfeinvalid"),
    ("GET", "/nope", None),
    ("POST", "/nope", b"{}"),
    ("PUT", "/score", b"{}"),
    ("DELETE", "/", None),
    ("GET", "/swagger.json", None),
    ("GET", "/swagger.json?version=3", None),
    ("GET", "/swagger.json?version=9", None),
    ("OPTIONS", "/", None),
    ("OPTIONS", "/score", None),
    ("OPTIONS", "/swagger.json", None),
    ("HEAD", "/score", None),
]


@pytest.mark.azureml
@pytest.mark.parametrize(("method", "path", "body"), CASES, ids=lambda v: repr(v)[:40])
def test_same_status_body_and_headers(
    servers: Servers, method: str, path: str, body: bytes | None
) -> None:
    kiln, azure = both(servers, method, path, body)
    assert (kiln.status, decoded(kiln)) == (azure.status, decoded(azure))
    assert kiln.headers.get("content-type") == azure.headers.get("content-type")
    assert_same_headers(kiln, azure)


def assert_same_headers(kiln: Reply, azure: Reply) -> None:
    names = ("x-ms-run-function-failed", "x-request-id", "x-ms-request-id", "x-ms-server-version")
    for name in names:
        if name in azure.headers:  # azmlinfsrv leaves the ids off 404/405; Kiln always sends them
            assert name in kiln.headers, name
    name = "x-ms-run-function-failed"
    assert kiln.headers.get(name) == azure.headers.get(name), name
    allowed = [set((r.headers.get("allow") or "").split(", ")) for r in (kiln, azure)]
    assert allowed[0] == allowed[1]  # Werkzeug's order follows a set's
    assert ("x-ms-run-fn-exec-ms" in kiln.headers) == ("x-ms-run-fn-exec-ms" in azure.headers)


@pytest.mark.azureml
def test_same_request_ids_and_request_headers(servers: Servers) -> None:
    kiln, azure = both(
        servers, "POST", "/score", b'{"kind": "headers"}', x_request_id="rid-A", x_foo="bar"
    )
    assert kiln.json() == azure.json() == {"foo": "bar", "id": "rid-A"}
    for reply in (kiln, azure):
        assert (reply.headers["x-request-id"], reply.headers["x-ms-request-id"]) == (
            "rid-A",
            "rid-A",
        )
    kiln, azure = both(servers, "GET", "/", x_ms_client_request_id="crid-B")
    for reply in (kiln, azure):
        assert (
            reply.headers["x-ms-request-id"] == reply.headers["x-ms-client-request-id"] == "crid-B"
        )
    kiln, azure = both(servers, "GET", "/", x_request_id="x" * 101)
    assert (
        (kiln.status, kiln.json())
        == (azure.status, azure.json())
        == (431, {"message": "x-request-id must not exceed 100 characters"})
    )
    assert_same_headers(kiln, azure)
    kiln, azure = both(servers, "GET", "/", x_ms_client_request_id="x" * 101)
    message = "x-ms-request-id and x-ms-client-request-id must not exceed 100 characters"
    assert (kiln.status, kiln.json()) == (azure.status, azure.json()) == (431, {"message": message})
    assert_same_headers(kiln, azure)


def health_port(runtime: Runtime) -> int:
    for line in runtime.stdout.read_text().splitlines():
        if line.startswith("health listening on "):
            return int(line.rsplit(":", 1)[1])
    raise AssertionError(f"no health port in the runtime's output:\n{runtime.log()}")


@pytest.mark.azureml
def test_separate_liveness_port(azmlinfsrv_python: Path, tmp_path: Path) -> None:
    """azmlinfsrv's ``--health_port`` (with ``SEPERATE_HEALTH_ENDPOINT=true``) and Kiln's
    ``--health-port``: a second port answering the same application, here with two workers."""
    script = write_score(tmp_path / "app", SCORE)
    baseline = azmlinfsrv_baseline()
    port, azure_health = baseline.free_port(), baseline.free_port()
    azure = baseline.start_azmlinfsrv(
        azmlinfsrv_python, script.parent, "score.py", port, 1,
        env={"SEPERATE_HEALTH_ENDPOINT": "true"}, args=["--health_port", str(azure_health)],
    )  # fmt: skip
    try:
        kiln = start_runtime(
            script, "--workers", "2", "--health-port", "0",
            log_dir=tmp_path / "kiln", python=str(azmlinfsrv_python),
        )  # fmt: skip
        try:
            assert kiln.ready, kiln.log()
            kiln_health = health_port(kiln)
            assert kiln_health != kiln.port
            for method, path, body in [("GET", "/", None), ("POST", "/score", b'{"kind": "dict"}')]:
                on_kiln = send(kiln_health, method, path, body)
                on_azure = send(azure_health, method, path, body)
                assert (on_kiln.status, on_kiln.body) == (on_azure.status, on_azure.body)
            assert send(kiln_health, "GET", "/").body == b"Healthy"
        finally:
            assert kiln.stop() == 0
    finally:
        baseline.stop(azure)
