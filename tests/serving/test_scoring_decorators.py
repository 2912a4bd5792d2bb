"""``@input_schema`` (inference-schema) and ``@rawhttp`` (``AMLRequest``/``AMLResponse``)
scoring scripts, served by the real azmlinfsrv and by Kiln's runtime on two environments: the
one holding azmlinfsrv itself (so the real ``azureml_inference_server_http`` and Flask), and one
holding only the real ``inference-schema`` package from the index (so Kiln's stand-ins for
``AMLRequest``/``AMLResponse``). Every case compares status, body and headers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from kiln import catalog
from kiln.environment.validation import validate_definition
from kiln.sdk.serving import InferenceConfig, LocalWebservice, Model
from kiln.workspace import Workspace
from kilntesting.cli import cached_venv
from kilntesting.images import BaseImage
from kilntesting.serving import Reply, azmlinfsrv_baseline, send, start_runtime, write_score

AZMLINFSRV = "azureml-inference-server-http==1.5.1"
INFERENCE_SCHEMA = "inference-schema==1.8"
JSON = {"Content-Type": "application/json"}

SCHEMA_SCORE = """\
from inference_schema.parameter_types.standard_py_parameter_type import StandardPythonParameterType
from inference_schema.schema_decorators import input_schema, output_schema


def init():
    pass


@input_schema("data", StandardPythonParameterType([[1.0, 2.0]]))
@input_schema("scale", StandardPythonParameterType(2), optional=True)
@output_schema(StandardPythonParameterType({"sums": [3.0]}))
def run(data, scale=1, request_headers=None):
    if data == "raise":
        raise ValueError("boom")
    headers = request_headers or {}
    return {"sums": [sum(row) * scale for row in data], "id": headers.get("X-Request-Id")}
"""

# A list of mixed types cannot be written in Swagger 2: only OpenAPI 3 describes this run().
MIXED_SCORE = SCHEMA_SCORE.replace("[[1.0, 2.0]]", '[1, "two"]')

RAW_SCORE = """\
from azureml_inference_server_http.api.aml_request import AMLRequest, rawhttp
from azureml_inference_server_http.api.aml_response import AMLResponse


def init():
    pass


@rawhttp
def run(request):
    case = request.headers.get("X-Case", "")
    if request.method == "GET":
        return AMLResponse(request.full_path + "|" + request.args.get("b", ""), 200)
    if case == "plain":
        return {"plain": True, "body": request.get_data(as_text=True)}
    if case == "fail":
        return AMLResponse("bad things", 503, {"X-Why": "because"})
    if case == "json":
        answer = {"got": request.get_json(), "type": request.content_type, "is_json": request.is_json}
        return AMLResponse(answer, 201, {"X-Multi": "a, b"}, json_str=True)
    if case == "none":
        return AMLResponse(None, 202)
    if case == "raise":
        raise ValueError("boom")
    resp = AMLResponse(request.get_data(False), 200, {"Content-Type": "application/octet-stream"})
    resp.headers["Access-Control-Allow-Origin"] = "http://www.example.com"
    return resp
"""
# The older import path azureml-core users have: azmlinfsrv makes it the same modules.
CONTRIB_SCORE = RAW_SCORE.replace("azureml_inference_server_http.api", "azureml.contrib.services")

SCHEMA_CASES = [
    ("POST", "/score", b'{"data": [[1, 2], [3, 4]]}', JSON),
    ("POST", "/score", b'{"data": [[1, 2]], "scale": 3}', {"Content-Type": "application/json; charset=utf-8"}),
    ("POST", "/score", b'{"data": [[1, 2]]}', {"Content-Type": "application/vnd.kiln+json"}),
    ("POST", "/score", b'{"data": [[1, 2]]}', {"Content-Type": "text/plain"}),
    ("POST", "/score", b'{"data": [[1, 2]]}', {}),
    ("POST", "/score", b'{"other": 1}', JSON),
    ("POST", "/score", b"[1, 2]", JSON),
    ("POST", "/score", b"not json", JSON),
    ("POST", "/score", b"", JSON),
    ("POST", "/score", b'{"data": "raise"}', JSON),
    ("POST", "/score", b'{"data": 5}', JSON),
    ("GET", "/score?data=%5B%5B1,2%5D%5D&scale=2", None),
    ("GET", "/score", None),
    ("OPTIONS", "/score", None),
    ("HEAD", "/score", None),
    ("GET", "/swagger.json", None),
    ("GET", "/swagger.json?version=3", None),
    ("GET", "/swagger.json?version=3.1", None),
    ("GET", "/swagger.json?version=9", None),
]  # fmt: skip

MIXED_CASES = [
    ("GET", "/swagger.json", None),
    ("GET", "/swagger.json?version=2.0", None),
    ("GET", "/swagger.json?version=3", None),
    ("GET", "/swagger.json?version=9", None),
    ("POST", "/score", b'{"data": [1, "two"]}', JSON),
]

RAW_CASES = [
    ("GET", "/score?a=1&b=x", None),
    ("POST", "/score", b"text body", {"X-Case": "plain"}),
    ("POST", "/score", b"", {"X-Case": "fail"}),
    ("POST", "/score", b'{"k": [1, 2]}', {"X-Case": "json", **JSON}),
    ("POST", "/score", b"", {"X-Case": "none"}),
    ("POST", "/score", b"", {"X-Case": "raise"}),
    ("POST", "/score", b"\x00\xffbytes", {}),
    ("OPTIONS", "/score", None),
    ("HEAD", "/score", None),
    ("PUT", "/score", b"x"),
    ("GET", "/swagger.json", None),
]
# Headers that run() set, and those the servers set, compared between the two.
COMPARED = (
    "content-type",
    "x-ms-run-function-failed",
    "x-why",
    "x-multi",
    "access-control-allow-origin",
    "allow",
)


@pytest.fixture(scope="session")
def azmlinfsrv_python() -> Path:
    return cached_venv(AZMLINFSRV, "azureml_inference_server_http.amlserver")


@pytest.fixture(scope="session")
def schema_python() -> Path:
    """An environment with the real inference-schema and not azmlinfsrv."""
    return cached_venv(INFERENCE_SCHEMA, "inference_schema.schema_decorators")


class Servers(NamedTuple):
    azure: int
    kiln: dict[str, int]  # environment -> port


CASES = {"schema": SCHEMA_CASES, "mixed": MIXED_CASES, "raw": RAW_CASES, "contrib": RAW_CASES}


@pytest.fixture(scope="module", params=list(CASES))
def servers(
    request: pytest.FixtureRequest,
    azmlinfsrv_python: Path,
    schema_python: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Servers]:
    sources = {"schema": SCHEMA_SCORE, "mixed": MIXED_SCORE, "raw": RAW_SCORE}
    source = sources.get(request.param, CONTRIB_SCORE)
    root = tmp_path_factory.mktemp(request.param)
    script = write_score(root / "app", source)
    baseline = azmlinfsrv_baseline()
    port = baseline.free_port()
    azure = baseline.start_azmlinfsrv(azmlinfsrv_python, script.parent, "score.py", port, 1)
    runtimes = []
    try:
        for name, python in (("azmlinfsrv-env", azmlinfsrv_python), ("schema-env", schema_python)):
            runtime = start_runtime(script, log_dir=root / name, python=str(python))
            runtimes.append((name, runtime))
            assert runtime.ready, runtime.log()
        yield Servers(port, {name: runtime.port for name, runtime in runtimes})
    finally:
        for _, runtime in runtimes:
            runtime.stop()
        baseline.stop(azure)


def decoded(reply: Reply) -> object:
    if reply.body and reply.headers.get("content-type") == "application/json":
        return json.loads(reply.body)
    return reply.body


def assert_same(kiln: Reply, azure: Reply) -> None:
    assert (kiln.status, decoded(kiln)) == (azure.status, decoded(azure))
    for name in COMPARED:
        assert kiln.headers.get(name) == azure.headers.get(name), name
    assert ("x-ms-run-fn-exec-ms" in kiln.headers) == ("x-ms-run-fn-exec-ms" in azure.headers)
    for name in ("x-request-id", "x-ms-request-id", "x-ms-server-version"):
        if name in azure.headers:
            assert name in kiln.headers, name


def run_cases(servers: Servers, cases: list[tuple[object, ...]]) -> None:
    for method, path, body, *headers in cases:
        sent = headers[0] if headers else {}
        azure = send(servers.azure, method, path, body, sent)  # type: ignore[arg-type]
        for env, port in servers.kiln.items():
            kiln = send(port, method, path, body, sent)  # type: ignore[arg-type]
            try:
                assert_same(kiln, azure)
            except AssertionError as exc:
                raise AssertionError(f"{method} {path} {body!r} on {env}: {exc}") from exc


@pytest.mark.azureml
def test_same_answers_as_azmlinfsrv(servers: Servers, request: pytest.FixtureRequest) -> None:
    run_cases(servers, CASES[request.node.callspec.params["servers"]])


@pytest.mark.azureml
def test_both_decorators_fail_at_start(schema_python: Path, tmp_path: Path) -> None:
    """As in azmlinfsrv: exit 3 without ready, the reason on stderr."""
    both = SCHEMA_SCORE.replace("@output_schema", "@rawhttp\n@output_schema")
    both = "from azureml.contrib.services.aml_request import rawhttp\n" + both
    runtime = start_runtime(
        write_score(tmp_path, both), log_dir=tmp_path / "log", python=str(schema_python)
    )
    assert (runtime.ready, runtime.proc.returncode) == (False, 3)
    assert "cannot be decorated with both @rawhttp and @input_schema" in runtime.stderr.read_text()


def test_stand_ins_serve_raw_http_on_a_bare_interpreter(tmp_path: Path) -> None:
    """Kiln's AMLRequest/AMLResponse need nothing but the standard library: the test's own
    interpreter (no azmlinfsrv) serves the @rawhttp script."""
    runtime = start_runtime(write_score(tmp_path, RAW_SCORE), log_dir=tmp_path / "log")
    try:
        assert runtime.ready, runtime.log()
        reply = send(runtime.port, "POST", "/score", b'{"k": 1}', {"X-Case": "json", **JSON})
        assert (reply.status, reply.json()) == (
            201,
            {"got": {"k": 1}, "type": "application/json", "is_json": True},
        )
        assert reply.headers["x-ms-run-function-failed"] == "False"
        head = send(runtime.port, "HEAD", "/score")  # a @rawhttp run() answers HEAD too
        assert head.headers["access-control-allow-origin"] == "http://www.example.com"
    finally:
        assert runtime.stop() == 0


@pytest.mark.parametrize("kind", ["process", "container"])
def test_deployed_in_an_environment_with_inference_schema(
    project: Workspace,
    tmp_path: Path,
    kind: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Kiln environment whose pip packages hold the real inference-schema, deployed with an
    @input_schema script and a @rawhttp one (the older azureml.contrib.services imports, served
    by Kiln's stand-ins through the runtime's own folder, also inside a container)."""
    container = kind == "container"
    if container:  # the test base image as the workspace default
        base: BaseImage = request.getfixturevalue("base_image")
        monkeypatch.setenv("KILN_BASE_IMAGE", base.local_ref)
    definition = {
        "name": "schema",
        "python": {"version": "3.11", "pip": {"packages": [INFERENCE_SCHEMA]}},
    }
    catalog.register(project, validate_definition(definition))
    config = LocalWebservice.deploy_configuration(container=container)
    (tmp_path / "model.txt").write_text("unused")
    model = Model.register(project, tmp_path / "model.txt", "m")
    services = []
    for name, source in (("schema", SCHEMA_SCORE), ("raw", CONTRIB_SCORE)):
        write_score(tmp_path / name, source)
        inference = InferenceConfig("score.py", tmp_path / name, "schema")
        services.append(Model.deploy(project, name, [model], inference, config))
    try:
        for service in services:
            service.wait_for_deployment()
        schema, raw = (s.scoring_uri for s in services)
        assert schema is not None and raw is not None
        assert schema_call(schema, b'{"data": [[1, 2]], "scale": 2}', JSON) == (
            200,
            {"sums": [6], "id": None},
        )
        assert schema_call(schema, b'{"data": [[1, 2]]}', {})[0] == 415
        assert schema_call(schema, b'{"nodata": 1}', JSON)[0] == 400
        swagger = schema.replace("/score", "/swagger.json")
        document = schema_call(swagger, None, {})[1]
        service_input = document["definitions"]["ServiceInput"]  # type: ignore[index]
        assert service_input["example"]["data"] == [[1.0, 2.0]]
        assert schema_call(raw, b"", {"X-Case": "fail"}) == (503, b"bad things")
    finally:
        for service in services:
            service.delete()


def schema_call(uri: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, object]:
    """POST ``body`` (GET when None): (status, JSON answer or the bytes)."""
    import urllib.error
    import urllib.request

    call = urllib.request.Request(
        uri, data=body, method="GET" if body is None else "POST", headers=headers
    )
    try:
        with urllib.request.urlopen(call, timeout=30) as response:
            status, data, kind = response.status, response.read(), response.headers["Content-Type"]
    except urllib.error.HTTPError as exc:
        status, data, kind = exc.code, exc.read(), exc.headers["Content-Type"]
    return status, json.loads(data) if kind == "application/json" else data
