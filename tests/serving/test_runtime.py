"""Kiln's scoring runtime as a real process on 127.0.0.1: the azmlinfsrv contract, keep-alive,
limits, start failures, graceful stop and several workers on one socket."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from kilntesting.serving import (
    KILN_SRC,
    Runtime,
    raw_http,
    runtime_env,
    send,
    start_runtime,
    write_score,
)

SCORE = """\
import json
import os
import time

STARTED = {}


def init():
    STARTED["cwd"] = os.getcwd()
    print("init ran in", os.getcwd())


def run(raw_data, request_headers):
    try:
        req = json.loads(raw_data)
    except ValueError:
        return {"raw": raw_data}
    kind = req.get("kind") if isinstance(req, dict) else None
    if kind == "raise":
        raise ValueError("boom")
    if kind == "sleep":
        time.sleep(req["s"])
        return {"slept": req["s"]}
    if kind == "headers":
        return {"headers": request_headers}
    if kind == "none":
        return None
    if kind == "set":
        return {1, 2}
    if kind == "pid":
        return os.getpid()
    if kind == "env":
        names = ("AZUREML_MODEL_DIR", "AZUREML_ENTRY_SCRIPT", "AML_APP_ROOT")
        return {"env": {n: os.environ.get(n) for n in names}, "cwd": STARTED["cwd"]}
    return {"raw": raw_data}
"""
RUN_FAILED = {
    "message": "An unexpected error occurred in scoring script. Check the logs for more info."
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    """One runtime for the tests that only send requests (limit: 1000 bytes)."""
    root = tmp_path_factory.mktemp("runtime")
    script = write_score(root / "app", SCORE)
    (root / "model").mkdir()
    runtime = start_runtime(
        script, "--max-body-bytes", "1000", log_dir=root / "log", model_dir=root / "model"
    )
    assert runtime.ready, runtime.log()
    yield runtime
    assert runtime.stop() == 0


def score(server: Runtime, payload: object, **kw: object) -> tuple[int, object]:
    reply = send(server.port, "POST", "/score", json.dumps(payload).encode(), **kw)  # type: ignore[arg-type]
    return reply.status, reply.json()


def test_health_check(server: Runtime) -> None:
    reply = send(server.port, "GET", "/")
    assert (reply.status, reply.body) == (200, b"Healthy")
    assert reply.headers["content-type"] == "text/html; charset=utf-8"
    assert reply.headers["x-request-id"] == reply.headers["x-ms-request-id"]
    assert "x-ms-run-function-failed" not in reply.headers
    head = send(server.port, "HEAD", "/")
    assert (head.status, head.body, head.headers["content-length"]) == (200, b"", "7")


def test_post_passes_the_body_as_text_and_returns_json(server: Runtime) -> None:
    reply = send(server.port, "POST", "/score", b"hello text")
    assert (reply.status, reply.json()) == (200, {"raw": "hello text"})
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers["x-ms-run-function-failed"] == "False"
    assert float(reply.headers["x-ms-run-fn-exec-ms"]) >= 0
    assert score(server, {"kind": "none"}) == (200, {})
    empty = send(server.port, "POST", "/score", b"")
    assert (empty.status, empty.json()) == (200, {"raw": ""})


def test_get_score_builds_json_from_the_query(server: Runtime) -> None:
    reply = send(server.port, "GET", "/score?a=1&b=%5B1,2%5D&c=x&c=y&d=null")
    expected = json.dumps({"a": 1, "b": [1, 2], "c": ["x", "y"], "d": None})
    assert (reply.status, reply.json()) == (200, {"raw": expected})
    assert send(server.port, "GET", "//score").json() == {"raw": "{}"}


def test_invalid_utf8_is_a_400(server: Runtime) -> None:
    reply = send(server.port, "POST", "/score", b"\xff\xfe")
    message = (
        "Input cannot be decoded as UTF-8: 'utf-8' codec can't decode byte 0xff in position 0: "
        "invalid start byte"
    )
    assert (reply.status, reply.json()) == (400, {"message": message})


def test_run_error_is_a_500_and_the_worker_keeps_serving(server: Runtime) -> None:
    reply = send(server.port, "POST", "/score", b'{"kind": "raise"}')
    assert (reply.status, reply.json()) == (500, RUN_FAILED)
    assert reply.headers["x-ms-run-function-failed"] == "True"
    assert "x-ms-run-fn-exec-ms" not in reply.headers
    assert score(server, {"kind": "x"}) == (200, {"raw": '{"kind": "x"}'})
    assert "ValueError: boom" in server.stderr.read_text()


def test_unserializable_result_is_an_internal_error(server: Runtime) -> None:
    message = "An unexpected internal error occurred. Check the logs for more info."
    assert score(server, {"kind": "set"}) == (500, {"message": message})


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/nope", 404), ("POST", "/score/x", 404), ("PUT", "/score", 405), ("POST", "/", 405)],
)
def test_unknown_paths_and_methods(server: Runtime, method: str, path: str, status: int) -> None:
    reply = send(server.port, method, path, b"{}")
    message = {
        404: "The requested URL was not found on the server. If you entered the URL manually "
        "please check your spelling and try again.",
        405: "The method is not allowed for the requested URL.",
    }[status]
    assert (reply.status, reply.json()) == (status, {"message": message})
    assert reply.headers["x-ms-run-function-failed"] == "False"
    assert reply.headers["x-request-id"]


def test_head_and_options_on_score(server: Runtime) -> None:
    assert send(server.port, "HEAD", "/score").status == 405
    options = send(server.port, "OPTIONS", "/score")
    assert (options.status, options.body) == (200, b"")


def test_swagger(server: Runtime) -> None:
    doc = send(server.port, "GET", "/swagger.json").json()
    assert isinstance(doc, dict) and doc["swagger"] == "2.0"
    assert set(doc["paths"]) == {"/", "/score", "/swagger.json"}
    assert doc["definitions"]["ServiceInput"] == {"type": "object", "example": {}}
    v3 = send(server.port, "GET", "/swagger.json?version=3").json()
    assert isinstance(v3, dict) and v3["openapi"] == "3.0.3"
    bad = send(server.port, "GET", "/swagger.json?version=9")
    message = "Swagger version [9] is not valid. Supported versions: [2, 3, 3.1]."
    assert (bad.status, bad.json()) == (404, {"message": message})


def test_request_id_headers(server: Runtime) -> None:
    echoed = send(server.port, "GET", "/", headers={"x-request-id": "rid-A"}).headers
    assert (echoed["x-request-id"], echoed["x-ms-request-id"]) == ("rid-A", "rid-A")
    client = send(server.port, "GET", "/", headers={"x-ms-client-request-id": "crid-B"}).headers
    assert (client["x-ms-request-id"], client["x-ms-client-request-id"]) == ("crid-B", "crid-B")
    assert client["x-request-id"] not in ("crid-B", "")
    too_long = send(server.port, "GET", "/", headers={"x-request-id": "x" * 101})
    assert too_long.status == 431
    assert too_long.json() == {"message": "x-request-id must not exceed 100 characters"}


def test_request_ids_with_control_characters_are_refused_not_echoed(server: Runtime) -> None:
    for value in (b"a\rInjected: 1", b"a\x00b"):
        head = b"GET / HTTP/1.1\r\nHost: x\r\nx-request-id: " + value + b"\r\n"
        answer = raw_http(server.port, head + b"Connection: close\r\n\r\n")
        status, _, rest = answer.partition(b"\r\n")
        assert status.startswith(b"HTTP/1.1 400 "), answer[:200]
        assert b"Injected" not in rest and b"\x00" not in rest
        assert b"x-request-id must not hold control characters" in rest
    traced = send(server.port, "GET", "/", headers={"traceid": "t\x7f"})
    assert traced.status == 400 and "TraceId" not in traced.headers


def test_run_gets_request_headers_with_werkzeug_names(server: Runtime) -> None:
    status, body = score(server, {"kind": "headers"}, headers={"x-foo": "bar"})
    assert status == 200 and isinstance(body, dict)
    assert body["headers"]["X-Foo"] == "bar"
    assert body["headers"]["Content-Length"] == "19"


def test_environment_and_working_directory(server: Runtime) -> None:
    status, body = score(server, {"kind": "env"})
    assert status == 200 and isinstance(body, dict)
    app = server.stdout.parent.parent / "app"
    assert body["cwd"] == str(app)
    assert body["env"] == {
        "AZUREML_MODEL_DIR": str(app.parent / "model"),
        "AZUREML_ENTRY_SCRIPT": str(app / "score.py"),
        "AML_APP_ROOT": str(app),
    }
    assert f"init ran in {app}" in server.stdout.read_text()  # print() goes to the log


def test_keep_alive_and_pipelining(server: Runtime) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        send(server.port, "GET", "/", conn=conn)
        first = conn.sock
        for i in range(5):
            reply = send(server.port, "POST", "/score", str(i).encode(), conn=conn)
            assert reply.status == 200 and "connection" not in reply.headers
        assert conn.sock is first  # the same connection throughout
    finally:
        conn.close()
    one = b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n1"
    last = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    answers = raw_http(server.port, one + one + last)
    assert answers.count(b"HTTP/1.1 200 OK") == 3 and answers.endswith(b"Healthy")


def test_body_over_the_limit_is_refused_before_it_is_read(server: Runtime) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(b"POST /score HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n")
        answer = sock.recv(65536)  # no body sent: the answer comes anyway
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b'{"message": "Request body exceeds the limit of 1000 bytes"}' in answer
    chunked = b"POST /score HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunked += b"800\r\n" + b"x" * 0x800 + b"\r\n0\r\n\r\n"
    assert raw_http(server.port, chunked).startswith(b"HTTP/1.1 413 ")
    ok = b"POST /score HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close"
    ok += b"\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    assert raw_http(server.port, ok).endswith(b'{"raw": "abcde"}')


@pytest.mark.parametrize(
    "garbage",
    [b"NONSENSE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"GET / HTTP/1.1\r\nno colon\r\n\r\n"],
)
def test_malformed_requests_get_an_answer_and_the_worker_lives(
    server: Runtime, garbage: bytes
) -> None:
    assert raw_http(server.port, garbage)[:12] in (b"HTTP/1.1 400", b"HTTP/1.1 505")
    assert send(server.port, "GET", "/").status == 200


@pytest.mark.parametrize("piece", [0, 1000, 9000], ids=["whole", "1k-pieces", "9k-pieces"])
def test_an_oversized_head_gets_the_same_answer_however_it_arrives(
    server: Runtime, piece: int
) -> None:
    # The answer must follow from the bytes, not from where the network cut them (a CI run
    # once got 414 instead of 431 for the same bytes because the first read held 8-64 KiB).
    long_line = b"GET /" + b"a" * 70000
    long_head = b"GET / HTTP/1.1\r\n" + b"X-Big: " + b"b" * 70000 + b"\r\n\r\n"
    for data, status in ((b"\x00" * 70000, 400), (long_line, 414), (long_head, 431)):
        answer = raw_http(server.port, data, piece=piece)
        assert answer[:12] == b"HTTP/1.1 %d" % status, (data[:20], answer[:80])
    assert send(server.port, "GET", "/").status == 200


def test_slow_run_does_not_hold_up_health_checks(server: Runtime) -> None:
    slow = threading.Thread(target=score, args=(server, {"kind": "sleep", "s": 2}))
    slow.start()
    try:
        time.sleep(0.3)
        started = time.monotonic()
        assert send(server.port, "GET", "/").status == 200
        assert time.monotonic() - started < 1.0
    finally:
        slow.join()


def test_access_log_has_no_bodies_or_header_values(server: Runtime) -> None:
    send(server.port, "POST", "/score?token=q-secret", b"body-secret", {"x-key": "h-secret"})
    log = server.log()
    assert "POST /score 200 " in log
    assert "secret" not in log


def test_show_errors_sends_the_exception_message(
    serve: Callable[..., Runtime], tmp_path: Path
) -> None:
    runtime = serve(write_score(tmp_path / "app", SCORE), "--show-errors")
    assert score(runtime, {"kind": "raise"}) == (500, {"message": "boom"})


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def init():\n    raise RuntimeError('init exploded')\ndef run(x):\n    return 1\n",
         "RuntimeError: init exploded"),
        ("def init():\n    pass\n", "does not define a run() function"),
        ("def init():\n    pass\ndef run(*args):\n    return 1\n", "*args, or **kwargs"),
        ("from azureml.contrib.services.aml_request import rawhttp\ndef init():\n    pass\n",
         "does not define a run() function"),
        ("import no_such_module_for_kiln\n", "No module named 'no_such_module_for_kiln'"),
    ],
)  # fmt: skip
def test_start_failures_exit_3_without_ready(
    serve: Callable[..., Runtime], tmp_path: Path, source: str, message: str
) -> None:
    runtime = serve(write_score(tmp_path / "app", source))
    assert not runtime.ready
    assert runtime.proc.returncode == 3
    assert message in runtime.stderr.read_text()


def test_sigterm_finishes_in_flight_requests(serve: Callable[..., Runtime], tmp_path: Path) -> None:
    runtime = serve(write_score(tmp_path / "app", SCORE))
    idle = http.client.HTTPConnection("127.0.0.1", runtime.port, timeout=10)
    send(runtime.port, "GET", "/", conn=idle)  # an idle keep-alive connection must not block
    results: list[tuple[int, object]] = []
    slow = threading.Thread(
        target=lambda: results.append(score(runtime, {"kind": "sleep", "s": 1}))
    )
    slow.start()
    time.sleep(0.3)
    started = time.monotonic()
    runtime.proc.send_signal(signal.SIGTERM)
    slow.join()
    assert runtime.proc.wait(timeout=20) == 0
    assert results == [(200, {"slept": 1})]
    assert time.monotonic() - started < 10
    idle.close()
    with pytest.raises(OSError):
        send(runtime.port, "GET", "/", timeout=2)


def pids_seen(port: int, tries: int = 300) -> set[int]:
    pids: set[int] = set()
    for _ in range(tries):  # each on a new connection: the kernel picks the worker
        reply = send(port, "POST", "/score", b'{"kind": "pid"}', {"Connection": "close"})
        pids.add(int(reply.body))
        if len(pids) >= 2:
            break
    return pids


def test_workers_option_starts_processes_sharing_the_socket(
    serve: Callable[..., Runtime], tmp_path: Path
) -> None:
    runtime = serve(write_score(tmp_path / "app", SCORE), "--workers", "2")
    assert runtime.ready
    assert len(pids_seen(runtime.port)) == 2
    assert runtime.stop() == 0


def test_two_workers_on_an_inherited_socket(tmp_path: Path) -> None:
    script = write_score(tmp_path / "app", SCORE)
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)
    port = listener.getsockname()[1]
    procs = []
    try:
        for _ in range(2):
            ready_r, ready_w = os.pipe()
            cmd = [sys.executable, "-m", "kiln.serving.runtime", "--entry-script", str(script)]
            cmd += ["--model-dir", str(tmp_path), "--listen-fd", str(listener.fileno())]
            cmd += ["--ready-fd", str(ready_w)]
            fds = (listener.fileno(), ready_w)
            procs.append(subprocess.Popen(cmd, env=runtime_env(), pass_fds=fds))
            os.close(ready_w)
            with os.fdopen(ready_r, "rb") as ready:
                assert ready.read() == b"ready\n"
        listener.close()  # only the workers hold it now
        assert len(pids_seen(port)) == 2
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        codes: list[int | None] = []
        for proc in procs:
            try:
                codes.append(proc.wait(timeout=30))
            except subprocess.TimeoutExpired:  # a failure, but never an orphaned worker
                proc.kill()
                proc.wait()
                codes.append(None)
        assert codes == [0, 0]
    assert str(KILN_SRC) in runtime_env()["PYTHONPATH"]


def test_workers_option_exits_3_when_a_worker_cannot_start(
    serve: Callable[..., Runtime], tmp_path: Path
) -> None:
    source = "def init():\n    raise RuntimeError('init exploded')\ndef run(x):\n    return 1\n"
    runtime = serve(write_score(tmp_path / "app", source), "--workers", "2")
    assert (runtime.ready, runtime.proc.returncode) == (False, 3)
    assert "RuntimeError: init exploded" in runtime.stderr.read_text()


def test_a_request_must_arrive_within_its_deadline_even_when_trickled(tmp_path: Path) -> None:
    """A client that stalls half-way through a request, or trickles one header line at a time,
    gets a 408 once the request's deadline passes, and the worker keeps answering others."""
    score = write_score(tmp_path / "app", "def init():\n    pass\n\ndef run(data):\n    return 1\n")
    runtime = start_runtime(score, "--request-timeout", "1.5", log_dir=tmp_path / "logs")
    try:
        assert runtime.ready
        stalled = [socket.create_connection(("127.0.0.1", runtime.port)) for _ in range(40)]
        for sock in stalled:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # the head never ends
        trickler = socket.create_connection(("127.0.0.1", runtime.port))
        trickler.sendall(b"GET / HTTP/1.1\r\n")
        started = time.monotonic()
        assert send(runtime.port, "GET", "/").status == 200  # others are served meanwhile
        answer = b""
        trickler.settimeout(0.2)
        while time.monotonic() - started < 10 and b"\r\n\r\n" not in answer:
            with contextlib.suppress(OSError):
                trickler.sendall(b"X-Slow: 1\r\n")  # a line every 0.2 s: never idle
            with contextlib.suppress(TimeoutError):
                answer += trickler.recv(65536)
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:100]
        assert time.monotonic() - started < 5
        for sock in stalled:
            sock.settimeout(5)
            assert sock.recv(65536).startswith(b"HTTP/1.1 408 ")
            sock.close()
        trickler.close()
    finally:
        runtime.stop()


def test_with_every_slot_taken_by_idle_connections_a_new_client_is_served(
    tmp_path: Path,
) -> None:
    """More idle connections than a worker has slots (MAX_CONNECTIONS): the one that waited
    longest is closed to make room, so a new request is answered at once, not after the idle
    timeout."""
    from kiln.serving.runtime_http import MAX_CONNECTIONS

    score = write_score(tmp_path / "app", "def init():\n    pass\n\ndef run(data):\n    return 1\n")
    runtime = start_runtime(score, log_dir=tmp_path / "logs")
    idle: list[socket.socket] = []
    try:
        assert runtime.ready
        for _ in range(MAX_CONNECTIONS + 6):
            idle.append(socket.create_connection(("127.0.0.1", runtime.port)))
        started = time.monotonic()
        reply = send(runtime.port, "GET", "/", timeout=15)
        assert reply.status == 200 and time.monotonic() - started < 10
    finally:
        for sock in idle:
            sock.close()
        runtime.stop()
