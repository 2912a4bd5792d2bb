"""Serving benchmark: Kiln's scoring runtime against azmlinfsrv, same score.py, same client.

One run prints one table: requests per second, p50 and p99 latency and errors, for a trivial
``score.py`` and a scikit-learn model (LogisticRegression trained on iris here), with 1 and 2
workers, at concurrency 8, Kiln and azmlinfsrv (``azureml-inference-server-http``) measured one
after the other on the same machine with the same closed-loop client
(``bench/baselines/azmlinfsrv.py``'s ``load``: keep-alive when the server allows it, a reconnect
counted in the latency when it does not).

The user packages are the same for both servers: a "user" venv gets scikit-learn and joblib and
serves Kiln's runtime (Kiln only on PYTHONPATH, as deployments run it); a second venv gets
exactly the versions the first one resolved, plus azureml-inference-server-http. Both venvs use
this interpreter and live in a temporary folder removed at the end. Logs of both servers go to
files (access lines included), as a deployment's do.

Run: ``python bench/serving.py [--seconds 10] [--repeat 3] [--workers 1,2]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from baselines.azmlinfsrv import (
    HOST,
    SKLEARN_BODY,
    SKLEARN_SCORE,
    TRAIN,
    TRIVIAL_BODY,
    TRIVIAL_SCORE,
    free_port,
    load,
    start_azmlinfsrv,
    stop,
)

REPO = Path(__file__).resolve().parents[1]
KILN_SRC = REPO / "src"
AZMLINFSRV = "azureml-inference-server-http==1.5.1"
USER_PACKAGES = ["scikit-learn", "joblib"]


def uv() -> str:
    sys.path.insert(0, str(KILN_SRC))
    from kiln.builders.uvtool import uv_binary

    return str(uv_binary())


def make_venvs(root: Path) -> tuple[Path, Path]:
    """The user's venv (scikit-learn, joblib) and azmlinfsrv's (the same versions + it)."""
    uv_bin = uv()
    user, azure = root / "user-venv", root / "azmlinfsrv-venv"
    for venv in (user, azure):
        subprocess.run([uv_bin, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    user_py, azure_py = user / "bin" / "python", azure / "bin" / "python"
    pip = [uv_bin, "pip", "install", "-q", "--python"]
    subprocess.run([*pip, str(user_py), *USER_PACKAGES], check=True)
    frozen = subprocess.run(
        [uv_bin, "pip", "freeze", "--python", str(user_py)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    subprocess.run([*pip, str(azure_py), *frozen, AZMLINFSRV], check=True)
    return user_py, azure_py


def start_kiln(
    python: Path, score_dir: Path, model_dir: Path, workers: int, log: Path
) -> tuple[subprocess.Popen[bytes], int]:
    """Kiln's runtime on 127.0.0.1 (a free port), returned once every worker is ready."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(KILN_SRC)
    ready_r, ready_w = os.pipe()
    cmd = [str(python), "-m", "kiln.serving.runtime", "--entry-script", "score.py"]
    cmd += ["--model-dir", str(model_dir), "--port", "0", "--workers", str(workers)]
    cmd += ["--ready-fd", str(ready_w)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=score_dir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            pass_fds=(ready_w,),
            start_new_session=True,
        )
    os.close(ready_w)
    with os.fdopen(ready_r, "rb") as ready:
        if ready.read() != b"ready\n":
            stop(proc)
            raise RuntimeError(f"Kiln's runtime did not start:\n{log.read_text()[-3000:]}")
    port = int(log.read_text().split("\n", 1)[0].rsplit(":", 1)[1])
    return proc, port


def measure(port: int, body: bytes, args: argparse.Namespace) -> dict[str, float]:
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
    return sorted(runs, key=lambda r: r["rps"])[(len(runs) - 1) // 2]  # the median run


def row(name: str, server: str, workers: int, r: dict[str, float], ratio: str) -> str:
    return (
        f"| {name:<13} | {server:<10} | {workers:>7} | {r['rps']:>7.0f} | {ratio:>6} | "
        f"{r['p50_ms']:>6.2f} | {r['p99_ms']:>6.2f} | {r['errors']:>6.0f} | "
        f"{os.getloadavg()[0]:>5.2f} |"
    )


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def run_scenario(
    name: str, score_dir: Path, model_dir: Path, body: bytes, pythons: tuple[Path, Path],
    args: argparse.Namespace, logs: Path,
) -> None:  # fmt: skip
    user_py, azure_py = pythons
    for workers in [int(w) for w in args.workers.split(",")]:
        proc, port = start_kiln(user_py, score_dir, model_dir, workers, logs / f"kiln-{name}.log")
        try:
            kiln = measure(port, body, args)
        finally:
            stop(proc)
        port = free_port()
        log = logs / f"azmlinfsrv-{name}-{workers}.log"
        proc = start_azmlinfsrv(
            azure_py, score_dir, "score.py", port, workers, model_dir=model_dir, log_path=log
        )
        try:
            azure = measure(port, body, args)
        finally:
            stop(proc)
        ratio = f"{kiln['rps'] / azure['rps']:.1f}x" if azure["rps"] else "-"
        print(row(name, "kiln", workers, kiln, ratio), flush=True)
        print(row(name, "azmlinfsrv", workers, azure, "1.0x"), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--repeat", type=int, default=1, help="runs per row; the median is shown")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="kiln-serving-bench-") as tmp:
        root = Path(tmp)
        started = time.monotonic()
        pythons = make_venvs(root)
        print(f"# venvs ready in {time.monotonic() - started:.1f}s; {AZMLINFSRV}")
        print(f"# {os.cpu_count()} CPUs; {uptime()}")
        print(f"# concurrency {args.concurrency}, {args.seconds:g}s per row, repeat {args.repeat}")
        model_dir = root / "model"
        model_dir.mkdir()
        subprocess.run([str(pythons[0]), "-c", TRAIN, str(model_dir)], check=True)
        scenarios = [
            ("trivial", TRIVIAL_SCORE, TRIVIAL_BODY),
            ("scikit-learn", SKLEARN_SCORE, SKLEARN_BODY),
        ]
        header = (
            f"| {'score.py':<13} | {'server':<10} | {'workers':>7} | {'req/s':>7} | {'vs az':>6} | "
            f"{'p50 ms':>6} | {'p99 ms':>6} | {'errors':>6} | {'load1':>5} |"
        )
        print(header)
        print("|" + "|".join("-" * len(c) for c in header.split("|")[1:-1]) + "|")
        for name, source, body in scenarios:
            score_dir = root / name
            score_dir.mkdir()
            (score_dir / "score.py").write_text(source)
            run_scenario(name, score_dir, model_dir, body, pythons, args, root)
        print(f"# {uptime()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
