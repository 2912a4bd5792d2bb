"""``kiln run ...``: submit scripts, follow them, look back at them.

``kiln run submit`` in the foreground is the run's watcher itself (no second process), so a
run in a warm environment costs little more than starting the script.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from kiln.cli.common import existing_workspace, workspace
from kiln.cli.output import add_json, emit_fields, emit_json, emit_table
from kiln.compute import DEFAULT_TARGET

CANCELED_EXIT = 130


def add_group(groups: Any) -> Any:
    """The ``run`` group; returns its command subparsers."""
    group = groups.add_parser(
        "run",
        help="run scripts in environments, and their history",
        description="Run a script in a registered environment on a compute target; every run "
        "keeps its snapshot, environment lock, logs, metrics and outputs.",
    )
    commands = group.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    return commands


def add_parser(groups: Any) -> None:
    commands = add_group(groups)
    add_submit(commands)

    p = commands.add_parser("list", help="list runs, newest first")
    p.add_argument("-e", "--experiment", metavar="NAME", help="runs of this experiment")
    p.add_argument("--env", metavar="NAME[:VERSION]", help="runs that used this environment")
    p.add_argument(
        "--status", metavar="STATUS", help="runs in this state (Running, Completed, Failed, ...)"
    )
    p.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    p.add_argument("--offset", type=int, default=0, help="skip this many of the newest matches")
    add_json(p, "run-summary-list")
    p.set_defaults(handler=list_)

    p = commands.add_parser("show", help="a run's details, environment, metrics and outputs")
    p.add_argument("run_id", metavar="ID")
    add_json(p, "run")
    p.set_defaults(handler=show)

    p = commands.add_parser("logs", help="print a run's output")
    p.add_argument("run_id", metavar="ID")
    p.add_argument("-f", "--follow", action="store_true", help="keep printing until the run ends")
    add_json(p, "run-log")
    p.set_defaults(handler=logs)

    p = commands.add_parser("cancel", help="stop a run (SIGTERM, then SIGKILL after --grace)")
    p.add_argument("run_id", metavar="ID")
    p.add_argument(
        "--grace",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="how long it has to stop after SIGTERM (default 10)",
    )
    add_json(p, "run-state")
    p.set_defaults(handler=cancel)

    p = commands.add_parser("download", help="save a run's outputs (and log) to a folder")
    p.add_argument("run_id", metavar="ID")
    p.add_argument("-d", "--directory", required=True, metavar="DIR", help="where to save them")
    p.add_argument("--prefix", default="", help="only files under this prefix, e.g. outputs/")
    add_json(p, "saved-files")
    p.set_defaults(handler=download)

    p = commands.add_parser(
        "reproduce",
        help="run again: same snapshot, environment version, lock, target (and image digest)",
    )
    p.add_argument("run_id", metavar="ID")
    p.add_argument("--detach", action="store_true", help="print the run id and return at once")
    add_json(p, "run-submitted")
    p.set_defaults(handler=reproduce)


def add_submit(commands: Any) -> None:
    p = commands.add_parser(
        "submit",
        help="run a script (waits and streams its output unless --detach)",
        description="Snapshot the source folder, materialize the environment (building it if "
        "needed) and run SCRIPT with ARGS on the target. Exit status: 0 when the run "
        "completes, the script's own exit code when it fails, 130 when canceled.",
    )
    environment = p.add_mutually_exclusive_group()
    environment.add_argument(
        "--env", metavar="NAME[:VERSION]", help="a registered or curated environment"
    )
    environment.add_argument(
        "--env-file",
        metavar="FILE",
        help="a definition file (Kiln YAML, conda, requirements, Azure ML, or an Azure ML "
        "command job YAML's inline environment); registered as 'anonymous' unless the same "
        "content is registered under its name",
    )
    p.add_argument(
        "-d",
        "--source-directory",
        default=".",
        metavar="DIR",
        help="the folder snapshotted and run in (default: here)",
    )
    p.add_argument(
        "--target",
        default=DEFAULT_TARGET,
        metavar="TARGET",
        help="local (default), container (inside the environment's image, with podman), "
        "ray://HOST:PORT[?image=true] (a Ray dashboard address; image=true: in the "
        "environment's image, pulled by the nodes from the workspace's registry), or a "
        "registered target",
    )
    p.add_argument(
        "-e", "--experiment", default="default", metavar="NAME", help="default: 'default'"
    )
    p.add_argument("--detach", action="store_true", help="print the run id and return at once")
    add_json(p, "run-submitted")
    p.add_argument("script", help="the script, relative to the source folder")
    p.add_argument("arguments", nargs=argparse.REMAINDER, metavar="-- ARGS")
    p.set_defaults(handler=submit)


def _arguments(args: argparse.Namespace) -> list[str]:
    values: list[str] = args.arguments
    return values[1:] if values[:1] == ["--"] else values


def _exit_code(status: str, code: int | None) -> int:
    if status == "Completed":
        return 0
    if status == "Canceled":
        return CANCELED_EXIT
    return code if code is not None and 0 < code < 256 else 1


def _time(epoch: float | None) -> str:
    if epoch is None:
        return ""
    return dt.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def _submitted(args: argparse.Namespace, ws: Any, final: Any) -> int:
    """Print a run that was submitted (or reproduced): its id when detached, else its end."""
    if args.detach:
        if args.json:
            emit_json({"id": final.id, "status": final.status})
        else:
            print(final.id)
        return 0
    if args.json:
        from kiln.runs.views import details

        emit_json(details(ws, final))
    # Otherwise the run's own last line ("[kiln] run ID: STATUS") has already been echoed.
    return _exit_code(final.status, final.exit_code)


def _watch_options(args: argparse.Namespace) -> dict[str, Any]:
    """How a foreground run is watched: with --json, stdout carries only the JSON document and
    the script's output goes to stderr."""

    def announce(record: Any) -> None:
        print(
            f"kiln: run {record.id} ({record.environment}, {record.compute_target})",
            file=sys.stderr,
        )
        sys.stdout.flush()

    echo = sys.stderr.buffer if args.json else sys.stdout.buffer
    return {"detach": args.detach, "echo": echo, "on_recorded": announce}


def submit(args: argparse.Namespace) -> int:
    from kiln.runs import core

    request = core.RunRequest(
        script=args.script,
        source_directory=Path(args.source_directory),
        arguments=_arguments(args),
        environment=args.env,
        compute_target=args.target,
        experiment=args.experiment,
    )
    if args.env_file:
        from kiln.cli.common import from_path

        source = from_path(Path(args.env_file), None, args)
        request.environment, request.environment_source = source.definition, source.source_dir
    ws = workspace(args)
    return _submitted(args, ws, core.submit(ws, request, **_watch_options(args)))


def reproduce(args: argparse.Namespace) -> int:
    from kiln.runs import core

    ws = workspace(args)
    return _submitted(args, ws, core.reproduce(ws, args.run_id, **_watch_options(args)))


def list_(args: argparse.Namespace) -> int:
    from kiln.runs import core

    found = core.list_runs(
        existing_workspace(args),
        experiment=args.experiment,
        environment=args.env,
        status=args.status,
        limit=args.limit,
        offset=args.offset,
    )
    if args.json:
        from kiln.runs.views import summary

        emit_json([summary(r) for r in found])
        return 0
    emit_table(
        ["run", "status", "environment", "target", "started", "exit"],
        [
            (r.id, r.status, r.environment, r.compute_target, _time(r.created_at), r.exit_code)
            for r in found
        ],
    )
    return 0


def show(args: argparse.Namespace) -> int:
    from kiln.runs import core

    record, info = core.describe_run(existing_workspace(args), args.run_id)
    if args.json:
        emit_json(info)
        return 0
    newer = info["environment"]["newer_versions"]
    emit_fields(
        [
            ("run", record.id),
            ("experiment", record.experiment),
            ("status", record.status + (f" ({record.error})" if record.error else "")),
            ("target", record.compute_target),
            ("script", " ".join([record.script, *record.arguments])),
            (
                "environment",
                f"{record.environment}"
                + (f" (newer: {', '.join(newer)})" if newer else " (the latest version)"),
            ),
            ("build hash", record.build_hash),
            ("lock digest", record.lock_digest),
            ("image", record.image_reference),
            ("image digest", record.image_digest),
            ("snapshot", record.snapshot_digest),
            ("started", _time(record.started_at) or None),
            ("ended", _time(record.ended_at) or None),
            ("duration", f"{info['duration_seconds']} s" if info["duration_seconds"] else None),
            ("exit code", record.exit_code),
            ("reproduces", record.reproduces),
            ("metrics", info["metrics"]),
            ("files", info["files"]),
        ]
    )
    return 0


def logs(args: argparse.Namespace) -> int:
    from kiln.runs import core

    if args.json:
        if args.follow:
            from kiln.errors import UsageError

            raise UsageError("run logs: --json prints the whole log once; drop --follow")
        ws = existing_workspace(args)
        record = core.get(ws, args.run_id)
        text = core.log_path(ws, args.run_id).read_bytes().decode("utf-8", "replace")
        emit_json({"id": record.id, "status": record.status, "log": text})
        return 0
    if args.follow:
        core.follow(existing_workspace(args), args.run_id, sys.stdout.buffer)
        return 0
    log = core.log_path(existing_workspace(args), args.run_id)
    sys.stdout.flush()
    sys.stdout.buffer.write(log.read_bytes())
    return 0


def cancel(args: argparse.Namespace) -> int:
    from kiln.runs import core

    record = core.cancel(workspace(args), args.run_id, grace=args.grace)
    if args.json:
        emit_json({"id": record.id, "status": record.status})
    else:
        print(f"run {record.id}: {record.status}")
    return 0


def download(args: argparse.Namespace) -> int:
    from kiln.runs import core

    saved = core.save_files(
        existing_workspace(args), args.run_id, Path(args.directory), prefix=args.prefix
    )
    if args.json:
        emit_json([str(path) for path in saved])
    else:
        for path in saved:
            print(path)
    return 0
