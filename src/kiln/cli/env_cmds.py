"""``kiln env ...``: the argument parsers. Handlers live in env_read.py and env_write.py."""

from __future__ import annotations

import argparse
from typing import Any

from kiln.cli.output import add_json

FORMATS = ["kiln", "azure-v1", "azure-v2", "conda", "requirements"]


def _source(parser: argparse.ArgumentParser, *, reference: bool) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("-f", "--file", metavar="FILE", help="a definition file")
    group.add_argument("-d", "--directory", metavar="DIR", help="a folder holding a definition")
    if reference:
        group.add_argument(
            "reference", nargs="?", metavar="NAME[:VERSION]", help="a registered environment"
        )
    parser.add_argument("--format", choices=FORMATS, help="the file format (detected if left out)")


def add_group(groups: Any) -> Any:
    """The ``env`` group; returns its command subparsers."""
    env = groups.add_parser(
        "env",
        help="define, register and inspect environments",
        description="Define, register and inspect environments.",
    )
    commands = env.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    return commands


def add_parser(groups: Any) -> None:
    from kiln.cli import build_cmds, env_read

    commands = add_group(groups)
    _add_writers(commands)
    _add_readers(commands)
    build_cmds.add_commands(commands)

    p = commands.add_parser(
        "schema", help="print the JSON Schema of Kiln YAML (JSON already; for editors and scripts)"
    )
    p.set_defaults(handler=env_read.schema)


def add_register(commands: Any) -> None:
    from kiln.cli import env_write

    p = commands.add_parser(
        "register", help="register a definition: same content keeps its version"
    )
    _source(p, reference=False)
    p.add_argument("-n", "--name", help="register under this name instead of the file's")
    p.add_argument("--version", help="an explicit version (default: the next integer)")
    add_json(p, "registered-version")
    p.set_defaults(handler=env_write.register, fast=env_write.register_fast)


def add_list(commands: Any) -> None:
    from kiln.cli import env_read

    p = commands.add_parser("list", help="list environments (latest version of each)")
    p.add_argument("--all-versions", action="store_true", help="every version, not only the latest")
    p.add_argument("--archived", action="store_true", help="include archived versions")
    p.add_argument("--search", metavar="TEXT", help="names containing TEXT")
    p.add_argument(
        "--tag", action="append", default=[], metavar="KEY[=VALUE]", help="with this tag"
    )
    p.add_argument("--no-curated", action="store_true", help="leave out curated environments")
    p.add_argument(
        "--anonymous",
        action="store_true",
        help="include the unregistered definitions runs used (registered as 'anonymous')",
    )
    add_json(p, "environment-version-list")
    p.set_defaults(handler=env_read.list_)


def add_show(commands: Any) -> None:
    from kiln.cli import env_read

    p = commands.add_parser("show", help="show one environment version")
    p.add_argument("reference", metavar="NAME[:VERSION]")
    p.add_argument(
        "--build",
        action="store_true",
        help="also show its build on this machine (never builds)",
    )
    p.add_argument("--runs", action="store_true", help="also list the runs that used it")
    add_json(p, "environment-detail")
    p.set_defaults(handler=env_read.show, fast=env_read.show_fast)


def _add_writers(commands: Any) -> None:
    from kiln.cli import env_write

    p = commands.add_parser("scaffold", help="write a starter definition into a folder")
    p.add_argument("-n", "--name", required=True, help="the environment's name")
    p.add_argument("-d", "--directory", required=True, metavar="DIR", help="where to write it")
    p.add_argument(
        "--format", choices=FORMATS, default="kiln", help="the file format (default kiln)"
    )
    p.add_argument(
        "--python", default=None, metavar="X.Y", help="Python version (default: this one)"
    )
    p.add_argument("--force", action="store_true", help="replace a definition already there")
    add_json(p, "written-files")
    p.set_defaults(handler=env_write.scaffold)

    add_register(commands)

    p = commands.add_parser("download", help="save a registered environment as files")
    p.add_argument("reference", metavar="NAME[:VERSION]")
    p.add_argument("-d", "--directory", required=True, metavar="DIR", help="where to write it")
    p.add_argument(
        "--format", choices=FORMATS, default="kiln", help="the file format (default kiln)"
    )
    p.add_argument("--force", action="store_true", help="replace a definition already there")
    add_json(p, "written-files")
    p.set_defaults(handler=env_write.download)

    for verb, text in (
        ("archive", "hide from lists (still gettable by version)"),
        ("restore", "undo archive"),
    ):
        p = commands.add_parser(verb, help=text)
        p.add_argument(
            "reference", metavar="NAME[:VERSION]", help="a version, or every version of NAME"
        )
        add_json(p, "archive-result")
        p.set_defaults(handler=env_write.archive, archived=verb == "archive")

    p = commands.add_parser("tag", help="set or remove tags on a version")
    p.add_argument("reference", metavar="NAME[:VERSION]")
    p.add_argument("tags", nargs="*", metavar="KEY=VALUE")
    p.add_argument(
        "--remove", action="append", default=[], metavar="KEY", help="remove this tag (repeat)"
    )
    add_json(p, "environment-version")
    p.set_defaults(handler=env_write.tag)


def _add_readers(commands: Any) -> None:
    from kiln.cli import env_read

    add_list(commands)

    add_show(commands)

    p = commands.add_parser("hash", help="print the build hash and definition digest")
    _source(p, reference=True)
    add_json(p, "digests")
    p.set_defaults(handler=env_read.hash_)

    p = commands.add_parser("diff", help="compare two versions or files")
    p.add_argument("old", metavar="A", help="NAME:VERSION, a file or a folder")
    p.add_argument("new", metavar="B", help="NAME:VERSION, a file or a folder")
    add_json(p, "definition-diff")
    p.set_defaults(handler=env_read.diff)

    p = commands.add_parser("lint", help="find unpinned, duplicate and conflicting packages")
    _source(p, reference=True)
    add_json(p, "lint-report")
    p.set_defaults(handler=env_read.lint)
