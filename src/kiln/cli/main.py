"""``kiln``: the entry point. Parses, dispatches to a command group, maps errors to exit codes
in one place. Command modules import the core lazily so ``kiln --help`` stays instant, and the
commands that must start fast parse with a short tree first (see parsing.py).

A command may declare a ``fast`` handler beside its ``handler``: it answers with the standard
library only, or returns None and the ``handler`` runs (see envdetail, sourcememo, fastexec)."""

from __future__ import annotations

import errno
import os
import sys

from kiln import __version__

TYPE_CHECKING = False  # typing, pathlib and the rest load after the exec card lane had its go
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from pathlib import Path
    from types import SimpleNamespace
    from typing import Any

UNEXPECTED_EXIT = 70  # EX_SOFTWARE: a bug, not bad input
WORKSPACE_EXIT = 5  # as WorkspaceError: the workspace's disk is full


def build_parser() -> argparse.ArgumentParser:
    from kiln.cli import (
        account_cmds,
        cache_cmds,
        doctor_cmd,
        env_cmds,
        image_cmds,
        init_cmd,
        model_cmds,
        run_cmds,
        server_cmds,
        target_cmds,
        ui_cmd,
        wheel_cmds,
    )
    from kiln.cli.parsing import top_parser

    parser, groups = top_parser()
    init_cmd.add_parser(groups)
    env_cmds.add_parser(groups)
    image_cmds.add_parser(groups)
    cache_cmds.add_parser(groups)
    wheel_cmds.add_parser(groups)
    run_cmds.add_parser(groups)
    target_cmds.add_parser(groups)
    model_cmds.add_parser(groups)
    doctor_cmd.add_parser(groups)
    server_cmds.add_parser(groups)
    account_cmds.add_parser(groups)
    ui_cmd.add_parser(groups)
    return parser


def _crash_log(exc: BaseException) -> Path:
    import platform
    import tempfile
    import time
    import traceback
    from pathlib import Path

    from kiln.secrets import redact

    path = Path(tempfile.gettempdir()) / f"kiln-crash-{int(time.time())}-{os.getpid()}.log"
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # readable by the user only
    with os.fdopen(handle, "w", encoding="utf-8") as log:
        log.write(f"kiln {__version__}; Python {sys.version}; {platform.platform()}\n")
        log.write(redact(f"argv: {sys.argv}\n\n"))  # URL credentials never reach a log
        log.write(redact("".join(traceback.format_exception(exc))))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    form = _plain_exec_form(argv)
    if form is not None:
        from kiln.execcard import exec_from_card

        workspace, _, reference, command = form
        if command[:1] != ["--"]:  # exec's handler reads a second "--" (kiln.cli.build_cmds)
            exec_from_card(workspace, reference, command)  # returns when no card answers
        from kiln.cli.build_cmds import exec_fast

        code = _run(_namespace(form), exec_fast)
        if code is not None:
            return code
    from kiln.cli.parsing import parse_short

    short = parse_short(argv)
    if short is not None:
        tried = form is not None  # the plain form tried the fast handler already
        code = _run(short, short.handler if tried else getattr(short, "fast", short.handler))
        if code is not None:
            return code
    args = build_parser().parse_args(argv)
    fast = getattr(args, "fast", None) if short is None else None  # a short tree tried it
    code = _run(args, fast) if fast is not None else None
    return code if code is not None else _run(args, args.handler) or 0


def plain_exec(argv: Sequence[str]) -> SimpleNamespace | None:
    """``kiln [-w PATH] [--debug] env exec NAME -- CMD ...`` as the short tree parses it, read
    without argparse: importing it, and the formatter its first argument makes (which imports
    shutil and gettext and measures the terminal), are ~9 ms of a warm exec. Any other form
    (options after ``exec``, no ``--``, a NAME like an option) is left to the trees; a test
    keeps the two readings equal."""
    form = _plain_exec_form(argv)
    return None if form is None else _namespace(form)


_PlainForm = tuple["str | None", bool, str, list[str]]  # workspace, debug, reference, command


def _plain_exec_form(argv: Sequence[str]) -> _PlainForm | None:
    """``plain_exec`` as a tuple: the exec card lane runs before ``types`` is imported."""
    workspace: str | None = None
    debug = False
    rest = list(argv)
    while rest[:1] in (["-w"], ["--workspace"], ["--debug"]):
        if rest[0] == "--debug":
            debug, rest = True, rest[1:]
        elif len(rest) > 1 and not rest[1].startswith("-"):
            workspace, rest = rest[1], rest[2:]
        else:
            return None
    if len(rest) < 5 or rest[:2] != ["env", "exec"] or rest[3] != "--":
        return None
    if rest[2].startswith("-") or not rest[2]:
        return None
    return workspace, debug, rest[2], rest[4:]  # argparse drops the first "--" too


def _namespace(form: _PlainForm) -> SimpleNamespace:
    from types import SimpleNamespace

    workspace, debug, reference, command = form
    return SimpleNamespace(workspace=workspace, debug=debug, reference=reference, command=command)


def _run(args: argparse.Namespace | SimpleNamespace, handler: Any) -> int | None:
    """``handler(args)``, with every error mapped to its message and exit code."""
    from kiln.errors import KilnError

    try:
        code: int | None = handler(args)
        return code
    except KilnError as exc:
        if args.debug:
            _print_traceback()
        print(f"kiln: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # the reader went away (| head): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            return _crashed(args, exc)
        where = f" writing {exc.filename}" if exc.filename else ""
        print(
            f"kiln: error: no space left on the device{where}; free some space and retry",
            file=sys.stderr,
        )
        return WORKSPACE_EXIT
    except KeyboardInterrupt:
        print("kiln: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        return _crashed(args, exc)


def _print_traceback() -> None:
    import traceback  # only on errors: ~2 ms that every command would pay

    traceback.print_exc()


def _crashed(args: argparse.Namespace | SimpleNamespace, exc: BaseException) -> int:
    """A bug, not bad input: one line on stderr, the traceback in a crash log."""
    if args.debug:
        _print_traceback()
    log = _crash_log(exc)
    from kiln.secrets import redact

    first = redact(str(exc).splitlines()[0]) if str(exc) else ""
    print(
        f"kiln: unexpected error: {type(exc).__name__}: {first} (details in {log})",
        file=sys.stderr,
    )
    return UNEXPECTED_EXIT
