"""``kiln``: the entry point. Parses, dispatches to a command group, maps errors to exit codes
in one place. Command modules import the core lazily so ``kiln --help`` stays instant."""

from __future__ import annotations

import argparse
import errno
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from kiln import __version__
from kiln.cli import (
    cache_cmds,
    doctor_cmd,
    env_cmds,
    image_cmds,
    init_cmd,
    model_cmds,
    run_cmds,
    target_cmds,
    wheel_cmds,
)

UNEXPECTED_EXIT = 70  # EX_SOFTWARE: a bug, not bad input
WORKSPACE_EXIT = 5  # as WorkspaceError: the workspace's disk is full


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    init_cmd.add_parser(groups)
    env_cmds.add_parser(groups)
    image_cmds.add_parser(groups)
    cache_cmds.add_parser(groups)
    wheel_cmds.add_parser(groups)
    run_cmds.add_parser(groups)
    target_cmds.add_parser(groups)
    model_cmds.add_parser(groups)
    doctor_cmd.add_parser(groups)
    return parser


def _crash_log(exc: BaseException) -> Path:
    import platform
    import tempfile
    import time

    from kiln.secrets import redact

    path = Path(tempfile.gettempdir()) / f"kiln-crash-{int(time.time())}-{os.getpid()}.log"
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # readable by the user only
    with os.fdopen(handle, "w", encoding="utf-8") as log:
        log.write(f"kiln {__version__}; Python {sys.version}; {platform.platform()}\n")
        log.write(redact(f"argv: {sys.argv}\n\n"))  # URL credentials never reach a log
        log.write(redact("".join(traceback.format_exception(exc))))
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from kiln.errors import KilnError

    try:
        code: int = args.handler(args)
        return code
    except KilnError as exc:
        if args.debug:
            traceback.print_exc()
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


def _crashed(args: argparse.Namespace, exc: BaseException) -> int:
    """A bug, not bad input: one line on stderr, the traceback in a crash log."""
    if args.debug:
        traceback.print_exc()
    log = _crash_log(exc)
    from kiln.secrets import redact

    first = redact(str(exc).splitlines()[0]) if str(exc) else ""
    print(
        f"kiln: unexpected error: {type(exc).__name__}: {first} (details in {log})",
        file=sys.stderr,
    )
    return UNEXPECTED_EXIT
