"""Baseline for the serving benchmark: Azure ML's own inference server (``azmlinfsrv``).

Starts the real ``azureml-inference-server-http`` package (from a virtualenv that already has
it; nothing is installed here) on 127.0.0.1, drives it with a small closed-loop HTTP client and
reports requests per second and p50/p99 latency.

``azmlinfsrv`` has no bind-address option: it always asks gunicorn for ``0.0.0.0:PORT``
(``constants.DEFAULT_HOST``). To stay on the loopback interface we run the same entry point
(``amlserver.run()``, exactly what the ``azmlinfsrv`` console script calls) after setting
``amlserver.DEFAULT_HOST = "127.0.0.1"``; everything else (arguments, environment variables,
gunicorn sync workers, logging, access log) is the package's own code path.

The client (:func:`load`) is one asyncio event loop with ``concurrency`` connections, each
sending its next request as soon as the previous response is read. It speaks HTTP/1.1 with
keep-alive and reconnects when the server answers ``Connection: close`` (gunicorn's sync
workers, which azmlinfsrv uses, close every connection), counting the reconnect in the latency,
as a real client would see it. ``client_cpu`` in the result is the client's CPU time divided by
the wall time (1.0 = one full core), so a run can show that the client was not the bottleneck;
``--selfcheck`` measures the client against a trivial asyncio server for the same purpose.

Run: ``python bench/baselines/azmlinfsrv.py --python /path/to/venv/bin/python`` (that venv
needs ``azureml-inference-server-http``, and ``scikit-learn`` for the model row). Prints one
table: a trivial ``score.py`` and a scikit-learn model (LogisticRegression on iris), 1 and 2
workers, at concurrency 8.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

HOST = "127.0.0.1"

# The console script `azmlinfsrv` is `azureml_inference_server_http.amlserver:run`; this runs the
# same function with the bind address switched from 0.0.0.0 to the loopback interface.
_LAUNCHER = textwrap.dedent(
    """
    import sys
    from azureml_inference_server_http import amlserver
    amlserver.DEFAULT_HOST = "127.0.0.1"
    sys.argv[0] = "azmlinfsrv"
    amlserver.run()
    """
)


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _get_status(url: str, timeout: float) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            status: int = resp.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):
        return None


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start_azmlinfsrv(
    venv_python: Path,
    score_dir: Path,
    entry: str,
    port: int,
    workers: int,
    *,
    model_dir: Path | None = None,
    env: dict[str, str] | None = None,
    log_path: Path | None = None,
    timeout: float = 120.0,
    args: Sequence[str] = (),
) -> subprocess.Popen[bytes]:
    """Start azmlinfsrv on 127.0.0.1:``port`` and return once ``GET /`` answers 200.

    The server runs in its own session (process group) with ``score_dir`` as its working
    directory, so :func:`stop` can end the gunicorn master and its workers together. Its output
    (startup banner, gunicorn and access log, the score script's prints) goes to ``log_path``
    (a temporary file by default; the path is kept on the returned object as ``log_path``).
    Raises ``RuntimeError`` with the log's tail if the server exits or does not become healthy.
    """
    if log_path is None:
        fd, name = tempfile.mkstemp(prefix="azmlinfsrv-", suffix=".log")
        os.close(fd)
        log_path = Path(name)
    run_env = dict(os.environ)
    run_env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure with bytecode caching as users run it
    # gunicorn >= 25 opens a control socket at a fixed per-user path; keep it per server.
    runtime_dir = tempfile.mkdtemp(prefix="azmlinfsrv-run-")
    run_env["XDG_RUNTIME_DIR"] = runtime_dir
    if model_dir is not None:
        run_env["AZUREML_MODEL_DIR"] = str(Path(model_dir).resolve())
    if env:
        run_env.update(env)
    cmd = [
        str(venv_python),
        "-c",
        _LAUNCHER,
        "--entry_script",
        entry,
        "--port",
        str(port),
        "--worker_count",
        str(workers),
        *args,  # e.g. --health_port P (with SEPERATE_HEALTH_ENDPOINT=true in env)
    ]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=score_dir,
            env=run_env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    proc.log_path = log_path  # type: ignore[attr-defined]
    proc.runtime_dir = runtime_dir  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    url = f"http://{HOST}:{port}/"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            stop(proc)
            raise RuntimeError(
                f"azmlinfsrv exited with code {proc.returncode} before it was healthy; "
                f"log {log_path}:\n{_tail(log_path)}"
            )
        # gunicorn listens before its workers have run init(); a connect then waits, so each
        # probe has its own short timeout.
        if _get_status(url, timeout=2.0) == 200:
            return proc
        time.sleep(0.05)
    stop(proc)
    raise RuntimeError(
        f"azmlinfsrv not healthy after {timeout}s; log {log_path}:\n{_tail(log_path)}"
    )


def stop(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> int | None:
    """Stop a server started by :func:`start_azmlinfsrv`: SIGTERM to its process group
    (gunicorn shuts its workers down gracefully), SIGKILL to the group if it is still there
    after ``timeout`` seconds. Returns the exit code of the master process."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)
    # Workers could outlive a master that was killed some other way: clear the group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    if proc.poll() is None:
        proc.wait(timeout=timeout)
    runtime_dir = getattr(proc, "runtime_dir", None)
    if runtime_dir:
        shutil.rmtree(runtime_dir, ignore_errors=True)
    return proc.returncode


# ---------------------------------------------------------------------------------------------
# The load generator


class _Conn:
    __slots__ = ("reader", "writer")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        self.writer.close()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one response; return (status, server keeps the connection open)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status_line = lines[0].split(b" ", 2)
    version, status = status_line[0], int(status_line[1])
    keep_alive = version == b"HTTP/1.1"
    length = -1
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            v = value.strip().lower()
            if v == b"close":
                keep_alive = False
            elif v == b"keep-alive":
                keep_alive = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length >= 0:
        await reader.readexactly(length)
    else:
        await reader.read()  # body delimited by close
        keep_alive = False
    return status, keep_alive


async def _client(
    host: str,
    port: int,
    request: bytes,
    start_at: float,
    end_at: float,
    latencies: list[float],
    counts: dict[str, int],
) -> None:
    conn: _Conn | None = None
    perf = time.perf_counter
    try:
        while True:
            t0 = perf()
            if t0 >= end_at:
                return
            try:
                if conn is None:
                    reader, writer = await asyncio.open_connection(host, port)
                    conn = _Conn(reader, writer)
                conn.writer.write(request)
                status, keep_alive = await _read_response(conn.reader)
                t1 = perf()
                if not keep_alive:
                    conn.close()
                    conn = None
                if t0 >= start_at:
                    if 200 <= status < 300:
                        latencies.append(t1 - t0)
                    else:
                        counts["errors"] += 1
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                if conn is not None:
                    conn.close()
                    conn = None
                if t0 >= start_at:
                    counts["errors"] += 1
                await asyncio.sleep(0.001)
    finally:
        if conn is not None:
            conn.close()


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def load(
    url: str,
    body: bytes,
    *,
    concurrency: int,
    seconds: float,
    warmup: float = 1.0,
    method: str = "POST",
    content_type: str = "application/json",
) -> dict[str, float]:
    """Closed-loop load: ``concurrency`` connections send ``method url`` with ``body`` for
    ``warmup`` (not counted) then ``seconds`` (counted) seconds.

    Returns ``requests`` (successful 2xx responses in the counted window), ``rps``, ``p50_ms``,
    ``p99_ms`` (latency of successful requests, including a reconnect when the server closed
    the previous connection), ``errors`` (non-2xx responses and connection failures) and
    ``client_cpu`` (client CPU seconds per wall second over the counted window).
    """
    parts = urlsplit(url)
    host = parts.hostname or HOST
    port = parts.port or 80
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    head = f"{method} {target} HTTP/1.1\r\nHost: {host}:{port}\r\n"
    if body or method in ("POST", "PUT", "PATCH"):
        head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
    request = head.encode("latin-1") + b"\r\n" + body

    latencies: list[float] = []
    counts = {"errors": 0}

    async def main() -> tuple[float, float]:
        start_at = time.perf_counter() + warmup
        end_at = start_at + seconds
        clients = [
            asyncio.create_task(_client(host, port, request, start_at, end_at, latencies, counts))
            for _ in range(concurrency)
        ]
        await asyncio.sleep(max(0.0, start_at - time.perf_counter()))
        cpu0 = time.process_time()
        await asyncio.gather(*clients)
        # Requests in flight at end_at finish after it; count the wall time they took too.
        wall = max(time.perf_counter(), end_at) - start_at
        return wall, time.process_time() - cpu0

    wall, cpu = asyncio.run(main())
    latencies.sort()
    return {
        "requests": len(latencies),
        "rps": len(latencies) / wall,
        "p50_ms": _percentile(latencies, 50) * 1e3,
        "p99_ms": _percentile(latencies, 99) * 1e3,
        "errors": counts["errors"],
        "client_cpu": cpu / wall,
    }


# ---------------------------------------------------------------------------------------------
# Self-check: the client against a trivial server, so its own ceiling is known

_TRIVIAL_SERVER = textwrap.dedent(
    """
    import asyncio, sys

    KEEP_ALIVE = sys.argv[2] == "keep-alive"
    BODY = b'{"ok": true}'
    RESPONSE = (
        b"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\nContent-Length: "
        + str(len(BODY)).encode()
        + (b"\\r\\n\\r\\n" if KEEP_ALIVE else b"\\r\\nConnection: close\\r\\n\\r\\n")
        + BODY
    )

    class Proto(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
            self.buf = b""

        def data_received(self, data):
            self.buf += data
            while b"\\r\\n\\r\\n" in self.buf:
                head, _, rest = self.buf.partition(b"\\r\\n\\r\\n")
                length = 0
                for line in head.split(b"\\r\\n")[1:]:
                    k, _, v = line.partition(b":")
                    if k.strip().lower() == b"content-length":
                        length = int(v)
                if len(rest) < length:
                    return
                self.buf = rest[length:]
                self.transport.write(RESPONSE)
                if not KEEP_ALIVE:
                    self.transport.close()
                    return

    async def main():
        server = await asyncio.get_running_loop().create_server(
            Proto, "127.0.0.1", int(sys.argv[1]), backlog=2048
        )
        print("ready", flush=True)
        async with server:
            await server.serve_forever()

    asyncio.run(main())
    """
)


def selfcheck(*, concurrency: int, seconds: float) -> list[tuple[str, dict[str, float]]]:
    """The client against a trivial asyncio server (one process, fixed response), with and
    without keep-alive: the rates the client reaches when the server costs almost nothing."""
    rows = []
    for mode in ("close", "keep-alive"):
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-c", _TRIVIAL_SERVER, str(port), mode],
            stdout=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            assert proc.stdout is not None
            proc.stdout.readline()
            result = load(
                f"http://{HOST}:{port}/score",
                b'{"data": 1}',
                concurrency=concurrency,
                seconds=seconds,
            )
        finally:
            stop(proc)
        rows.append((f"client check: trivial server, {mode}", result))
    return rows


# ---------------------------------------------------------------------------------------------
# The benchmark

TRIVIAL_SCORE = """\
def init():
    pass


def run(raw_data):
    return {"ok": True}
"""

SKLEARN_SCORE = """\
import json
import os

import joblib
import numpy as np

model = None


def init():
    global model
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.pkl"))


def run(raw_data):
    data = np.asarray(json.loads(raw_data)["data"], dtype=float)
    return model.predict(data).tolist()
"""

TRAIN = """\
import sys
from pathlib import Path

import joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

X, y = load_iris(return_X_y=True)
model = LogisticRegression(max_iter=1000).fit(X, y)
joblib.dump(model, Path(sys.argv[1]) / "model.pkl")
"""

TRIVIAL_BODY = b'{"data": [1, 2, 3]}'
SKLEARN_BODY = b'{"data": [[5.1, 3.5, 1.4, 0.2], [6.2, 3.4, 5.4, 2.3]]}'


def _version(venv_python: Path) -> str:
    out = subprocess.run(
        [
            str(venv_python),
            "-c",
            "import importlib.metadata as m; print(m.version('azureml-inference-server-http'),"
            " m.version('gunicorn'), m.version('flask'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    server, gunicorn, flask = out.stdout.split()
    return f"azureml-inference-server-http {server} (gunicorn {gunicorn}, flask {flask})"


def _median_run(runs: list[dict[str, float]]) -> tuple[dict[str, float], str]:
    """The run with the median throughput (its own latencies), and the range of req/s."""
    by_rps = sorted(runs, key=lambda r: r["rps"])
    spread = f"{by_rps[0]['rps']:.0f}-{by_rps[-1]['rps']:.0f}" if len(runs) > 1 else "-"
    return by_rps[(len(by_rps) - 1) // 2], spread


def _fmt(name: str, workers: str, r: dict[str, float], spread: str, load1: float) -> str:
    return (
        f"| {name:<40} | {workers:>7} | {r['rps']:>7.0f} | {spread:>11} | {r['p50_ms']:>6.2f} | "
        f"{r['p99_ms']:>6.2f} | {r['errors']:>6.0f} | {r['client_cpu']:>10.2f} | {load1:>5.2f} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--python",
        required=True,
        type=Path,
        help="interpreter of a venv with azureml-inference-server-http (and scikit-learn)",
    )
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure each row N times on the same server; print the median-throughput run",
    )
    parser.add_argument(
        "--selfcheck",
        action="store_true",
        help="also measure the client against a trivial asyncio server",
    )
    args = parser.parse_args(argv)
    venv_python = args.python.absolute()
    worker_counts = [int(w) for w in args.workers.split(",")]

    print(f"# {_version(venv_python)}; concurrency {args.concurrency}, {args.seconds:g}s each")
    print(f"# {os.cpu_count()} CPUs; load average at start {os.getloadavg()}")
    header = (
        f"| {'score.py':<40} | {'workers':>7} | {'req/s':>7} | {'req/s range':>11} | "
        f"{'p50 ms':>6} | {'p99 ms':>6} | {'errors':>6} | {'client cpu':>10} | {'load1':>5} |"
    )
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")

    if args.selfcheck:
        for name, result in selfcheck(concurrency=args.concurrency, seconds=args.seconds):
            print(_fmt(name, "-", result, "-", os.getloadavg()[0]), flush=True)

    with tempfile.TemporaryDirectory(prefix="azmlinfsrv-bench-") as tmp:
        root = Path(tmp)
        scenarios: list[tuple[str, Path, Path | None, bytes]] = []
        trivial_dir = root / "trivial"
        trivial_dir.mkdir()
        (trivial_dir / "score.py").write_text(TRIVIAL_SCORE)
        scenarios.append(('trivial (returns {"ok": true})', trivial_dir, None, TRIVIAL_BODY))

        sklearn_dir = root / "sklearn"
        model_dir = root / "model"
        sklearn_dir.mkdir()
        model_dir.mkdir()
        (sklearn_dir / "score.py").write_text(SKLEARN_SCORE)
        trained = subprocess.run(
            [str(venv_python), "-c", TRAIN, str(model_dir)], capture_output=True, text=True
        )
        if trained.returncode == 0:
            scenarios.append(
                ("scikit-learn LogisticRegression", sklearn_dir, model_dir, SKLEARN_BODY)
            )
        else:
            print(f"# skipped the scikit-learn row: {trained.stderr.strip().splitlines()[-1]}")

        for name, score_dir, mdir, body in scenarios:
            for workers in worker_counts:
                port = free_port()
                proc = start_azmlinfsrv(
                    venv_python,
                    score_dir,
                    "score.py",
                    port,
                    workers,
                    model_dir=mdir,
                    log_path=root / f"{score_dir.name}-{workers}.log",
                )
                try:
                    load1 = os.getloadavg()[0]
                    runs = [
                        load(
                            f"http://{HOST}:{port}/score",
                            body,
                            concurrency=args.concurrency,
                            seconds=args.seconds,
                            warmup=args.warmup,
                        )
                        for _ in range(max(1, args.repeat))
                    ]
                finally:
                    stop(proc)
                result, spread = _median_run(runs)
                print(_fmt(name, str(workers), result, spread, load1), flush=True)
    print(f"# load average at end {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
