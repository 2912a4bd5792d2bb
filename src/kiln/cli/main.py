"""``kiln``: the entry point. Parses, dispatches to a command group, maps errors to exit codes
in one place. Command modules import the core lazily so ``kiln --help`` stays instant, and the
commands that must start fast parse with a short tree first (see parsing.py).

A command may declare a ``fast`` handler beside its ``handler``: it answers with the standard
library only, or returns None and the ``handler`` runs (see envdetail, sourcememo, fastexec)."""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kiln import __version__
from kiln.cli.parsing import parse_short, top_parser

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
    short = parse_short(argv)
    if short is not None:
        code = _run(short, getattr(short, "fast", short.handler))
        if code is not None:
            return code
    args = build_parser().parse_args(argv)
    fast = getattr(args, "fast", None) if short is None else None  # a short tree tried it
    code = _run(args, fast) if fast is not None else None
    return code if code is not None else _run(args, args.handler) or 0


def _run(args: argparse.Namespace, handler: Any) -> int | None:
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


def _crashed(args: argparse.Namespace, exc: BaseException) -> int:
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
