"""``kiln server`` (run the team server) and ``kiln server create-admin`` (the first admin,
made on the server host). FastAPI and uvicorn are imported only when the server starts."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from kiln.cli.output import add_json, emit_json, warn

SERVER_DIR_VARIABLE = "KILN_SERVER_DIR"


def _where(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    # SUPPRESS: left out, the global -w/--workspace given before `server` is kept
    group.add_argument(
        "--workspace", metavar="PATH", default=argparse.SUPPRESS, help="the workspace to serve"
    )
    group.add_argument(
        "--database-url",
        metavar="URL",
        help="serve this PostgreSQL registry (password as ${VAR}); the server keeps its "
        f"files in ${SERVER_DIR_VARIABLE} or the per-user data folder",
    )


def add_parser(groups: Any) -> None:
    p = groups.add_parser(
        "server",
        help="run the team server (HTTP API)",
        description="Run the team server: a JSON API under /api/v1 for a shared workspace.",
    )
    p.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (use PostgreSQL)")
    p.add_argument(
        "--access-log",
        action="store_true",
        help="log every request (method, path, status); off by default: it costs a line per read",
    )
    p.add_argument(
        "--artifacts",
        metavar="URL",
        help="where shared artifacts are kept: file:///PATH (default: the workspace's "
        "artifacts folder) or s3://BUCKET/PREFIX?endpoint_url=URL&region=REGION "
        "(credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
    )
    _where(p)
    p.set_defaults(handler=serve)
    commands = p.add_subparsers(dest="command", metavar="COMMAND")
    c = commands.add_parser(
        "create-admin", help="create the first admin and print its token (shown once)"
    )
    c.add_argument("name", metavar="NAME")
    _where(c)
    add_json(c, "token-created")
    c.set_defaults(handler=create_admin)


def _server_dir() -> Path:
    if os.environ.get(SERVER_DIR_VARIABLE):
        return Path(os.environ[SERVER_DIR_VARIABLE])
    from kiln.workspace import user_default_path

    return user_default_path().parent / "server"


def served_workspace(args: argparse.Namespace) -> Any:
    """The workspace to serve: ``--database-url`` (kept in the server folder), a workspace
    folder (made if missing), or the usual discovery."""
    from kiln.workspace import Workspace

    if args.database_url:
        from kiln.private import private_folder

        return Workspace.create(private_folder(_server_dir()), database_url=args.database_url)
    if args.workspace:
        return Workspace.create(args.workspace)
    return Workspace.discover(None)


def serve(args: argparse.Namespace) -> int:
    from kiln.errors import UsageError

    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port} is not a TCP port; use 1-65535")
    if args.workers < 1:
        raise UsageError(f"--workers {args.workers} must be 1 or more")
    if args.artifacts:
        from kiln.blobstores import open_blob_store

        open_blob_store(args.artifacts)  # a malformed URL fails here, before anything starts
    workspace = served_workspace(args)
    from kiln.server.run import serve as run

    run(
        workspace,
        host=args.host,
        port=args.port,
        workers=args.workers,
        artifacts=args.artifacts,
        access_log=args.access_log,
    )
    return 0


def create_admin(args: argparse.Namespace) -> int:
    from kiln.accounts import create_admin as make

    made = make(served_workspace(args), args.name)
    if args.json:
        emit_json(made._asdict())
    else:
        print(made.token)
        warn(f"admin {made.owner} created; the token above is shown only once")
    return 0
