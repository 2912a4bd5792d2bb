"""``--workers N`` for standalone use and tests: N worker processes accepting on one socket,
started and watched by this process (Kiln's supervisor does the same for deployments).

Each worker is ``python -m kiln.serving.runtime ... --listen-fd FD --ready-fd W`` on this
interpreter. The group is ready when every worker is; if one fails to start, the others are
stopped and the exit code is the failed worker's (3). A worker that dies later is restarted.
SIGTERM is passed on to the workers, which finish what they are serving.

Standard library only: this runs on the user environment's interpreter.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType

RESTART_DELAY = 1.0


def worker_command(
    args: argparse.Namespace, listen_fd: int, ready_fd: int, health_fd: int | None = None
) -> list[str]:
    cmd = [sys.executable, "-m", "kiln.serving.runtime"]
    cmd += ["--entry-script", str(Path(args.entry_script).resolve())]
    cmd += ["--model-dir", str(Path(args.model_dir).resolve())]
    cmd += ["--listen-fd", str(listen_fd), "--ready-fd", str(ready_fd)]
    cmd += ["--max-body-bytes", str(args.max_body_bytes)]
    if health_fd is not None:
        cmd += ["--health-listen-fd", str(health_fd)]
    if args.app_root:
        cmd += ["--app-root", str(Path(args.app_root).resolve())]
    if args.show_errors:
        cmd.append("--show-errors")
    return cmd


def start_worker(
    args: argparse.Namespace, listener: socket.socket, health: socket.socket | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    """A worker process and the read end of its ready pipe."""
    ready_r, ready_w = os.pipe()
    health_fd = None if health is None else health.fileno()
    cmd = worker_command(args, listener.fileno(), ready_w, health_fd)
    fds = (
        (listener.fileno(), ready_w)
        if health_fd is None
        else (listener.fileno(), ready_w, health_fd)
    )
    proc = subprocess.Popen(cmd, pass_fds=fds)
    os.close(ready_w)
    return proc, ready_r


def wait_ready(proc: subprocess.Popen[bytes], ready_r: int) -> bool:
    """True once the worker wrote ``ready``; False if it closed the pipe (it failed)."""
    try:
        data = b""
        while b"\n" not in data:
            chunk = os.read(ready_r, 64)
            if not chunk:
                return False
            data += chunk
        return data.startswith(b"ready")
    finally:
        os.close(ready_r)


def stop_all(workers: list[subprocess.Popen[bytes]], sig: int = signal.SIGTERM) -> None:
    for proc in workers:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(sig)
    for proc in workers:
        proc.wait()


def supervise_workers(
    args: argparse.Namespace,
    listener: socket.socket,
    signal_ready: Callable[[], None],
    health: socket.socket | None = None,
) -> int:
    started = [start_worker(args, listener, health) for _ in range(args.workers)]
    workers = [proc for proc, _ in started]
    ready = [wait_ready(proc, ready_r) for proc, ready_r in started]  # every pipe closed
    if not all(ready):
        stop_all(workers)
        codes = [p.returncode for p in workers if p.returncode not in (0, None, -signal.SIGTERM)]
        return codes[0] if codes else 3
    signal_ready()
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for proc in workers:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    while workers:
        pid, status = os.wait()
        for index, proc in enumerate(workers):
            if proc.pid != pid:
                continue
            proc.returncode = os.waitstatus_to_exitcode(status)
            del workers[index]
            if not stopping:
                print(f"worker {pid} exited with {proc.returncode}; restarting", file=sys.stderr)
                time.sleep(RESTART_DELAY)
                new, ready_r = start_worker(args, listener, health)
                workers.append(new)
                os.close(ready_r)
                if stopping:  # SIGTERM came while it started
                    new.send_signal(signal.SIGTERM)
            break
    listener.close()
    if health is not None:
        health.close()
    return 0
