"""The top of the argument tree, and short trees for the commands that must start fast:
``kiln env list``, ``show``, ``register``, ``exec``, ``which``, ``build`` and ``kiln run submit``.

Why: the full tree imports every command module and builds every parser (~45 ms on a 2-core
machine), most of the budget of a warm ``exec`` or an unchanged ``register``. A short tree holds
the top level, the command's group and the one command, made by the same functions as the full
tree, so whatever it accepts parses exactly as there. Whatever it would not parse quietly (an
error, ``--help``, ``--version``) it leaves to the full tree, which prints what it always did.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from kiln import __version__


def top_parser(
    parser_class: type[argparse.ArgumentParser] = argparse.ArgumentParser,
) -> tuple[argparse.ArgumentParser, Any]:
    """``kiln`` with its global options; returns it and its command groups to add to."""
    parser = parser_class(
        prog="kiln",
        description="Reproducible, auditable, portable machine-learning environments.",
        epilog="Workspace discovery: --workspace, $KILN_WORKSPACE, a .kiln/ folder above the "
        "current directory, then a per-user default. Every command that prints data takes --json.",
    )
    parser.add_argument("--version", action="version", version=f"kiln {__version__}")
    parser.add_argument("-w", "--workspace", metavar="PATH", help="the workspace folder to use")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    groups = parser.add_subparsers(dest="group", metavar="COMMAND")
    groups.required = True
    return parser, groups


class _NotShort(Exception):
    """The short tree would print or exit: the full tree takes over."""


class _QuietParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _NotShort

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise _NotShort

    def _print_message(self, message: str, file: Any = None) -> None:
        raise _NotShort


def _adder(group: str, command: str) -> tuple[Callable[[Any], Any], Callable[[Any], None]] | None:
    """What adds ``group`` and then ``command`` to the tree, for the commands that have a short
    tree."""
    if group == "run" and command == "submit":
        from kiln.cli import run_cmds

        return run_cmds.add_group, run_cmds.add_submit
    if group != "env":
        return None
    from kiln.cli.env_cmds import add_group

    if command in ("list", "show", "register"):
        from kiln.cli import env_cmds

        return add_group, getattr(env_cmds, f"add_{command}")
    if command in ("exec", "which", "build"):
        from kiln.cli import build_cmds

        return add_group, getattr(build_cmds, f"add_{command}")
    return None


def _words(argv: Sequence[str]) -> list[str]:
    """The first two words that are not options or the value of ``-w``/``--workspace``."""
    words: list[str] = []
    skip = False
    for arg in argv:
        if skip or arg.startswith("-"):
            skip = arg in ("-w", "--workspace")
            continue
        words.append(arg)
        if len(words) == 2:
            break
    return words


def parse_short(argv: Sequence[str]) -> argparse.Namespace | None:
    """The arguments of a command that has a short tree, or None for the full tree."""
    words = _words(argv)
    adders = _adder(*words) if len(words) == 2 else None
    if adders is None:
        return None
    add_group, add_command = adders
    parser, groups = top_parser(_QuietParser)
    add_command(add_group(groups))
    try:
        return parser.parse_args(argv)
    except _NotShort:
        return None
