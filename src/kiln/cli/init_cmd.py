"""``kiln init``: create a workspace."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kiln.cli.output import add_json


def add_parser(groups: Any) -> None:
    parser = groups.add_parser(
        "init",
        help="create a workspace (.kiln/) in a folder",
        description="Create a workspace: an embedded SQLite registry and an artifact store in "
        "PATH/.kiln/, or a registry in PostgreSQL with --database-url.",
    )
    parser.add_argument(
        "path",
        nargs="?",
        help="folder to create it in (default: --workspace, then $KILN_WORKSPACE, then .), "
        "so later commands find it the same way",
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="use PostgreSQL, e.g. postgresql+psycopg://kiln:${KILN_DB_PASSWORD}@db/kiln",
    )
    parser.add_argument(
        "--cache-dir",
        metavar="PATH",
        help="keep this workspace's builds in PATH (default: the per-user cache)",
    )
    parser.add_argument(
        "--image-registry",
        metavar="URL",
        help="cache images in this registry, e.g. https://registry.example.com/team "
        "(http:// for one without TLS; a password only as ${VAR})",
    )
    parser.add_argument(
        "--base-image",
        metavar="IMAGE",
        help="the base image for `kiln image build` of a definition that names none",
    )
    parser.add_argument(
        "--python-downloads",
        choices=("never", "automatic"),
        help="automatic: a Python version the machine lacks (Azure's files pin patch releases, "
        "e.g. 3.8.13) is installed by uv as a managed Python (default: never; "
        "KILN_PYTHON_DOWNLOADS overrides)",
    )
    parser.add_argument(
        "--python-mirror",
        metavar="URL",
        help="where uv downloads Pythons from: a copy of its Python downloads on your network, "
        "for machines that cannot reach the internet (KILN_PYTHON_MIRROR overrides)",
    )
    add_json(parser, "workspace")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from kiln.cli.output import emit_json
    from kiln.errors import UsageError
    from kiln.workspace import Workspace

    if args.image_registry:
        from kiln.builders.oci.registry import parse

        try:
            parse(args.image_registry)
        except ValueError as exc:
            raise UsageError(f"--image-registry: {exc}") from None
    import os

    path = args.path or args.workspace or os.environ.get("KILN_WORKSPACE") or "."
    if (
        args.path
        and args.workspace
        and Path(args.path).absolute() != Path(args.workspace).absolute()
    ):
        raise UsageError(
            f"init: PATH {args.path} and --workspace {args.workspace} differ; give one"
        )
    workspace = Workspace.create(
        path,
        database_url=args.database_url,
        cache_dir=args.cache_dir,
        image_registry=args.image_registry,
        base_image=args.base_image,
        python_downloads=args.python_downloads,
        python_mirror=args.python_mirror,
    )
    if args.json:
        emit_json({"path": str(workspace.path), "registry": workspace.database_display})
    else:
        print(f"Workspace ready at {workspace.path} (registry: {workspace.database_display})")
    return 0
