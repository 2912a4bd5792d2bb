"""Kiln's scoring runtime: serves a user's ``score.py`` over HTTP as Azure ML's inference server
(``azmlinfsrv``) does, on the user environment's own interpreter.

    python -m kiln.serving.runtime --entry-script PATH --model-dir DIR
        (--listen-fd FD [--health-listen-fd FD] | --host H --port P [--health-port P])
        [--ready-fd FD] [--app-root DIR] [--max-body-bytes N] [--workers N] [--show-errors]

One process is one worker: it sets ``AZUREML_MODEL_DIR``, ``AZUREML_ENTRY_SCRIPT`` and
``AML_APP_ROOT``, puts the app root (default: the script's folder) and the script's folder on
``sys.path``, changes into the app root, imports ``score.py`` and calls ``init()``. If that
raises, the traceback goes to stderr and the process exits with code 3 without writing to the
ready fd. Otherwise it writes ``ready\\n`` to ``--ready-fd`` and serves until SIGTERM (stop
accepting, finish in-flight requests for up to 30 s, exit 0). ``--listen-fd`` is a bound,
listening socket inherited from a supervisor (several workers may accept on it);
``--host/--port`` binds one itself (``--port 0``: a free port) and prints
``listening on HOST:PORT`` as its first line; with ``--workers N`` it starts N worker processes
on that socket and supervises them. ``--health-port`` opens a second port for liveness probes
(``health listening on HOST:PORT`` next), served by the same application, as azmlinfsrv's
``--health_port`` with ``SEPERATE_HEALTH_ENDPOINT=true`` does.

``run()`` is called as azmlinfsrv calls it: undecorated, with ``@input_schema`` (inference-schema,
which the environment holds) or ``@rawhttp`` (``AMLRequest``/``AMLResponse`` from the real
azureml-inference-server-http when the environment holds it, else Kiln's stand-ins). Standard
library only (and ``kiln.serving``'s runtime modules): this runs where only the user's packages
are installed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import sys
import traceback
from pathlib import Path
from types import FrameType

from kiln.serving import scoring_script
from kiln.serving.runtime_app import ScoringApp
from kiln.serving.runtime_http import REQUEST_TIMEOUT, HttpServer

INIT_FAILED = 3  # azmlinfsrv's exit code when score.py cannot be loaded or init() raises
DEFAULT_MAX_BODY = 100 * 1024 * 1024
GRACE_SECONDS = 30.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m kiln.serving.runtime")
    parser.add_argument("--entry-script", required=True)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--app-root", help="working directory (default: the script's folder)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--listen-fd", type=int, help="an inherited listening socket")
    where.add_argument("--port", type=int, help="bind HOST:PORT (0: a free port)")
    parser.add_argument("--health-port", type=int, help="with --port: a liveness port (0: free)")
    parser.add_argument("--health-listen-fd", type=int, help="with --listen-fd: the liveness one")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--ready-fd", type=int, help="write 'ready\\n' here once init() is done")
    parser.add_argument("--max-body-bytes", type=int, default=DEFAULT_MAX_BODY)
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=REQUEST_TIMEOUT,
        help="seconds a request may take to arrive, head and body (408 after)",
    )
    parser.add_argument("--workers", type=int, default=1, help="with --port: worker processes")
    parser.add_argument("--show-errors", action="store_true", help="run()'s error in 500 bodies")
    args = parser.parse_args(argv)
    if args.workers < 1 or (args.workers > 1 and args.listen_fd is not None):
        parser.error("--workers N (N >= 1) goes with --host/--port, not --listen-fd")
    if args.max_body_bytes < 0:
        parser.error("--max-body-bytes must be 0 or more")
    if args.health_port is not None and args.port is None:
        parser.error("--health-port goes with --port, not --listen-fd (use --health-listen-fd)")
    if args.health_listen_fd is not None and args.listen_fd is None:
        parser.error("--health-listen-fd goes with --listen-fd")
    return args


def prepare_process(args: argparse.Namespace) -> str:
    """Environment variables, ``sys.path`` and working directory as score.py expects them;
    returns the entry script's absolute path."""
    entry = Path(args.entry_script).resolve()
    script_dir = str(entry.parent)
    app_root = str(Path(args.app_root or script_dir).resolve())
    os.environ["AZUREML_MODEL_DIR"] = str(Path(args.model_dir).resolve())
    os.environ["AZUREML_ENTRY_SCRIPT"] = str(entry)
    os.environ["AML_APP_ROOT"] = app_root
    for folder in dict.fromkeys([script_dir, app_root]):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    os.chdir(app_root)
    return str(entry)


def start_script(args: argparse.Namespace) -> scoring_script.ScoringScript | None:
    """Import score.py and run ``init()``; None (traceback on stderr) if either fails."""
    try:
        entry = prepare_process(args)
        script = scoring_script.load(entry)
        script.init()
    except scoring_script.ScriptError as exc:
        print(f"kiln scoring runtime: cannot serve {args.entry_script}: {exc}", file=sys.stderr)
        return None
    except (Exception, SystemExit):
        traceback.print_exc()
        print(f"kiln scoring runtime: {args.entry_script} failed to start", file=sys.stderr)
        return None
    return script


def signal_ready(fd: int | None) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.write(fd, b"ready\n")
        with contextlib.suppress(OSError):
            os.close(fd)


def serve_worker(
    args: argparse.Namespace, listener: socket.socket, health: socket.socket | None = None
) -> int:
    script = start_script(args)
    if script is None:
        return INIT_FAILED
    app = ScoringApp(script, app_root=str(Path.cwd()), show_errors=args.show_errors)
    server = HttpServer(
        listener,
        app,
        max_body_bytes=args.max_body_bytes,
        request_timeout=args.request_timeout,
        health_listener=health,
    )

    def on_signal(signum: int, frame: FrameType | None) -> None:
        server.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal_ready(args.ready_fd)
    print(f"worker {os.getpid()} serving {args.entry_script}", flush=True)
    server.serve_forever(grace=GRACE_SECONDS)
    print(f"worker {os.getpid()} stopped", flush=True)
    return 0


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.listen(2048)
    return listener


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with contextlib.suppress(AttributeError, ValueError):
        sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    if args.listen_fd is not None:
        fd = args.health_listen_fd
        health = None if fd is None else socket.socket(fileno=fd)
        return serve_worker(args, socket.socket(fileno=args.listen_fd), health)
    listener = bind(args.host, args.port)
    host, port = listener.getsockname()[:2]
    print(f"listening on {host}:{port}", flush=True)
    health = None
    if args.health_port is not None:
        health = bind(args.host, args.health_port)
        print("health listening on {}:{}".format(*health.getsockname()[:2]), flush=True)
    if args.workers == 1:
        return serve_worker(args, listener, health)
    from kiln.serving.runtime_prefork import supervise_workers

    return supervise_workers(args, listener, lambda: signal_ready(args.ready_fd), health)


if __name__ == "__main__":
    sys.exit(main())
