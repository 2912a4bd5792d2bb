"""``kiln ui``: the web UI of a local workspace on 127.0.0.1, for its owner (no login; see
kiln.server.ui.local). It opens no browser: it prints the address."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(groups: Any) -> None:
    p = groups.add_parser(
        "ui",
        help="serve the web UI of a local workspace on 127.0.0.1",
        description="Serve the web UI of a local workspace on 127.0.0.1 for its owner; "
        "open the printed address in a browser.",
    )
    p.add_argument("--port", type=int, default=8081, help="port to listen on (default 8081)")
    # SUPPRESS: left out, the global -w/--workspace given before `ui` is kept
    p.add_argument(
        "--workspace", metavar="PATH", default=argparse.SUPPRESS, help="the workspace to show"
    )
    p.set_defaults(handler=serve)


def serve(args: argparse.Namespace) -> int:
    from kiln.cli.common import existing_workspace
    from kiln.errors import UsageError

    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port} is not a TCP port; use 1-65535")
    workspace = existing_workspace(args)
    if workspace.server_url is not None:
        raise UsageError(
            f"{workspace.server_url} is a Kiln server: open it in a browser; "
            "`kiln ui` serves a local workspace"
        )
    from kiln.server.app import create_app
    from kiln.server.ui.local import serve as run

    run(workspace, create_app(workspace), port=args.port)
    return 0
