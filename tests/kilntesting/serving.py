"""Helpers for the serving tests.

:func:`start_runtime` starts Kiln's real scoring runtime (``python -m kiln.serving.runtime``)
as a process on 127.0.0.1 and returns once it wrote ``ready`` to its ready pipe; the
``serve`` fixture (kilntesting.fixtures) stops every runtime a test started. ``send`` and
``raw_http`` are tiny clients that return exactly what the server sent.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import os
import selectors
import signal
import socket
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import kiln
from kilntesting.cli import REPO

if TYPE_CHECKING:
    from kiln.workspace import Workspace

KILN_SRC = Path(kiln.__file__).resolve().parents[1]  # put on PYTHONPATH, as deployments do


@dataclass
class Runtime:
    """A running scoring runtime: its process, port and log files."""

    proc: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    port: int = 0
    ready: bool = False
    stopped: list[int] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")

    def stop(self, timeout: float = 40.0) -> int:
        """SIGTERM, wait; SIGKILL if it does not stop in time. Returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def write_score(folder: Path, source: str, name: str = "score.py") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def runtime_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZUREML_", "AML_"))}
    env["PYTHONPATH"] = str(KILN_SRC)
    env.update(extra or {})
    return env


def _first_line(path: Path, proc: subprocess.Popen[bytes], deadline: float) -> str:
    while time.monotonic() < deadline:
        text = path.read_text(errors="replace")
        if "\n" in text:
            return text.split("\n", 1)[0]
        if proc.poll() is not None:
            break
        time.sleep(0.01)
    return ""


def _wait_ready(ready_r: int, deadline: float) -> bool:
    data = b""
    with selectors.DefaultSelector() as selector:
        selector.register(ready_r, selectors.EVENT_READ)
        while time.monotonic() < deadline and b"\n" not in data:
            if not selector.select(timeout=max(0.0, deadline - time.monotonic())):
                break
            chunk = os.read(ready_r, 64)
            if not chunk:
                break
            data += chunk
    return data == b"ready\n"


def start_runtime(
    entry_script: Path,
    *args: str,
    log_dir: Path,
    model_dir: Path | None = None,
    python: str = sys.executable,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> Runtime:
    """Start the runtime on 127.0.0.1 with ``--port 0``; return when it is ready, or when it
    exited (then ``ready`` is False and ``proc.returncode`` is set)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    out, err = log_dir / "stdout.log", log_dir / "stderr.log"
    ready_r, ready_w = os.pipe()
    cmd = [python, "-m", "kiln.serving.runtime", "--entry-script", str(entry_script)]
    cmd += ["--model-dir", str(model_dir or entry_script.parent), "--port", "0"]
    cmd += ["--ready-fd", str(ready_w), *args]
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            env=runtime_env(env),
            pass_fds=(ready_w,),
            cwd=log_dir,
        )
    os.close(ready_w)
    runtime = Runtime(proc, out, err)
    deadline = time.monotonic() + timeout
    try:
        runtime.ready = _wait_ready(ready_r, deadline)
    finally:
        os.close(ready_r)
    line = _first_line(out, proc, deadline)
    if line.startswith("listening on "):
        runtime.port = int(line.rsplit(":", 1)[1])
    if not runtime.ready:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
    return runtime


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> object:
        import json

        return json.loads(self.body)


def send(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    *,
    conn: http.client.HTTPConnection | None = None,
    timeout: float = 30.0,
) -> Reply:
    """One request (on ``conn`` if given, so keep-alive can be tested)."""
    own = conn is None
    connection = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        names = {k.lower(): v for k, v in response.getheaders()}
        return Reply(response.status, names, data)
    finally:
        if own:
            connection.close()


def post(uri: str, body: bytes = b"{}") -> tuple[int, bytes]:
    """POST ``body`` to a deployment's scoring URI: (status, body), an error status included."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(uri, data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def deployment_containers(ws: Workspace, name: str) -> list[str]:
    """The names of the containers (running or not) that podman holds for a deployment."""
    from kiln.serving import containers

    label = f"{containers.LABEL}={containers.label(ws, name)}"
    done = subprocess.run(
        ["podman", "ps", "--all", "--filter", f"label={label}", "--format", "{{.Names}}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.split()


def raw_http(port: int, data: bytes, *, timeout: float = 10.0, piece: int = 0) -> bytes:
    """Send ``data`` as is (in pieces of ``piece`` bytes a moment apart, so that the server
    reads them one by one, if given); return every byte the server sends until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        if piece:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                for start in range(0, len(data), piece):  # the server may answer half-way
                    sock.sendall(data[start : start + piece])
                    time.sleep(0.002)
        else:
            sock.sendall(data)
        chunks = []
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)


def azmlinfsrv_baseline() -> ModuleType:
    """``bench/baselines/azmlinfsrv.py`` (its loopback launcher, ``stop`` and ``load``)."""
    name = "kiln_bench_azmlinfsrv"
    if name not in sys.modules:
        path = REPO / "bench" / "baselines" / "azmlinfsrv.py"
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]
