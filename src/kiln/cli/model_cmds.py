"""``kiln model ...`` and ``kiln deploy ...``: registered models and the services that serve them."""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.cli.common import existing_workspace, workspace
from kiln.cli.output import add_json, emit_fields, emit_json, emit_table
from kiln.serving.specs import DEFAULT_MAX_BODY

if TYPE_CHECKING:
    from kiln.serving.specs import SpecRequest


def _pairs(values: list[str], what: str) -> dict[str, str]:
    from kiln.errors import UsageError

    found = {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key:
            raise UsageError(f"`{what}`: {value!r} is not KEY=VALUE")
        found[key] = text
    return found


def add_parser(groups: Any) -> None:
    group = groups.add_parser("model", help="register, list and download models")
    commands = group.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    p = commands.add_parser("register", help="register a file or folder as the next version")
    p.add_argument("-n", "--name", required=True, help="the model's name (a new one starts at 1)")
    p.add_argument(
        "-p", "--path", required=True, help="a file or folder; with --run, a path in its outputs"
    )
    p.add_argument("--run", metavar="ID", help="take the path from this run's outputs (lineage)")
    p.add_argument(
        "--tag", action="append", default=[], metavar="KEY=VALUE", help="repeat for several"
    )
    p.add_argument("--description", help="free text shown by `model show`")
    add_json(p, "model")
    p.set_defaults(handler=model_register)
    p = commands.add_parser("list", help="list models")
    p.add_argument("-n", "--name", help="every version of this model")
    add_json(p, "model-list")
    p.set_defaults(handler=model_list)
    p = commands.add_parser("show", help="a model version and its lineage")
    p.add_argument("reference", metavar="NAME[:VERSION]")
    add_json(p, "model")
    p.set_defaults(handler=model_show)
    p = commands.add_parser("download", help="copy a model version into a folder")
    p.add_argument("reference", metavar="NAME[:VERSION]")
    p.add_argument("-d", "--directory", required=True, metavar="DIR", help="where to save it")
    p.set_defaults(handler=model_download)

    _add_deploy_parser(groups)


def _add_deploy_parser(groups: Any) -> None:
    group = groups.add_parser(
        "deploy",
        help="serve models with a score.py as a background web service",
        description="Deployments run score.py (init()/run()) in a registered environment, "
        "speaking Azure ML's inference server contract, and outlive the command.",
    )
    commands = group.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    p = commands.add_parser("create", help="deploy models (waits until healthy unless --no-wait)")
    p.add_argument(
        "-n",
        "--name",
        required=True,
        help="the deployment's name (letters, digits, '.', '_' and '-')",
    )
    _spec_arguments(p, required=True)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback)")
    p.add_argument("--port", type=int, help="port (default: a free one)")
    p.add_argument(
        "--health-port",
        type=int,
        metavar="PORT",
        help="also answer liveness probes (GET /) on this port, as azmlinfsrv's --health_port",
    )
    p.add_argument(
        "--container",
        action="store_true",
        help="run the workers in containers of the environment's image (podman)",
    )
    p.add_argument(
        "--no-wait", action="store_true", help="return once it is started, before it is healthy"
    )
    add_json(p, "deployment")
    p.set_defaults(handler=deploy_create)
    p = commands.add_parser("update", help="switch to new models/code with no downtime")
    p.add_argument("name", help="the deployment to change; options left out stay as they are")
    _spec_arguments(p, required=False)
    add_json(p, "deployment")
    p.set_defaults(handler=deploy_update)
    for verb, text in (("list", "list deployments"), ("show", "one deployment")):
        p = commands.add_parser(verb, help=text)
        if verb == "show":
            p.add_argument("name")
        add_json(p, "deployment-list" if verb == "list" else "deployment")
        p.set_defaults(handler=deploy_list if verb == "list" else deploy_show)
    p = commands.add_parser("logs", help="print the service's log")
    p.add_argument("name")
    p.set_defaults(handler=deploy_logs)
    p = commands.add_parser("delete", help="stop the service and forget it")
    p.add_argument("name")
    add_json(p, "deployment-deleted")
    p.set_defaults(handler=deploy_delete)


def _spec_arguments(p: argparse.ArgumentParser, *, required: bool) -> None:
    p.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME[:VERSION]",
        required=required,
        help="a registered model (repeat for several; default version: the latest)",
    )
    p.add_argument(
        "--entry-script",
        required=required,
        metavar="score.py",
        help="the script with init() and run(), relative to the source folder",
    )
    p.add_argument(
        "-d",
        "--source-directory",
        default=".",
        metavar="DIR",
        help="the folder snapshotted with the entry script (default: here)",
    )
    p.add_argument("--env", metavar="NAME[:VERSION]", help="default: the curated inference env")
    p.add_argument("--workers", type=int, help="worker processes (default 1)")
    p.add_argument(
        "--allow-many-workers",
        action="store_true",
        help="allow more --workers than 4 per CPU of this machine",
    )
    p.add_argument(
        "--env-var",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="for score.py; write secrets as ${VAR} (expanded when it starts)",
    )
    p.add_argument(
        "--max-body-mb",
        type=float,
        help=f"largest request body (default {DEFAULT_MAX_BODY // 2**20})",
    )
    p.add_argument(
        "--show-errors",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="500 answers carry run()'s exception message (azmlinfsrv's do not)",
    )


def _created(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def model_register(args: argparse.Namespace) -> int:
    from kiln.serving import models

    ws = workspace(args)
    tags = _pairs(args.tag, "tag")
    if args.run:
        record = models.register_from_run(
            ws, args.run, args.path, args.name, tags=tags, description=args.description
        )
    else:
        record = models.register(
            ws, Path(args.path), args.name, tags=tags, description=args.description
        )
    if args.json:
        emit_json(record.summary())
    else:
        print(
            f"Registered model {record.reference}"
            + (f" from run {record.run_id}" if record.run_id else "")
        )
    return 0


def model_list(args: argparse.Namespace) -> int:
    from kiln.serving import models

    found = models.list_models(existing_workspace(args), args.name)
    if args.json:
        emit_json([r.summary() for r in found])
        return 0
    emit_table(
        ["name", "version", "kind", "size", "run", "registered", "by"],
        [
            (r.name, r.version, r.kind, r.size, r.run_id, _created(r.created_at), r.created_by)
            for r in found
        ],
    )
    return 0


def model_show(args: argparse.Namespace) -> int:
    from kiln.serving import models

    record = models.get(existing_workspace(args), *models.parse_model_reference(args.reference))
    info = record.summary()
    if args.json:
        emit_json(info)
    else:
        emit_fields([(k.replace("_", " "), v) for k, v in info.items()])
    return 0


def model_download(args: argparse.Namespace) -> int:
    from kiln.serving import models

    ws = workspace(args)
    record = models.get(ws, *models.parse_model_reference(args.reference))
    print(models.download(ws, record, Path(args.directory)))
    return 0


def _request(args: argparse.Namespace) -> SpecRequest:
    """The deployment the command line asks for (what it leaves out: see ``specs``)."""
    from kiln.serving.specs import SpecRequest

    return SpecRequest(
        models=args.model,
        entry_script=args.entry_script,
        source_directory=args.source_directory,
        environment=args.env,
        workers=args.workers,
        environment_variables=_pairs(args.env_var, "env-var") or None,
        max_body_bytes=_megabytes(args.max_body_mb),
        show_errors=args.show_errors,
        allow_many_workers=args.allow_many_workers,
    )


def _megabytes(value: float | None) -> int | None:
    """``--max-body-mb`` in bytes (0 and negatives are left to the core check to refuse)."""
    from kiln.errors import UsageError

    if value is None:
        return None
    if not math.isfinite(value):
        raise UsageError(f"`--max-body-mb`: {value} is not a number of megabytes (e.g. 100)")
    return math.ceil(value * 2**20) if value > 0 else math.floor(value * 2**20)


def _print_deployment(record: Any, as_json: bool) -> None:
    if as_json:
        emit_json(record.summary())
        return
    emit_fields(
        [
            (k.replace("_", " "), v)
            for k, v in record.summary().items()
            if k not in ("created_at", "updated_at")
        ]
    )


def deploy_create(args: argparse.Namespace) -> int:
    from kiln.serving import deployments
    from kiln.serving.specs import check_address, check_health_port, new_spec

    ws = workspace(args)
    check_address(args.host, args.port)  # before the source folder is snapshotted
    if args.health_port is not None:
        check_health_port(args.host, args.port, args.health_port)
    spec = new_spec(ws, _request(args))
    deployments.create(
        ws,
        args.name,
        spec,
        host=args.host,
        port=args.port,
        container=args.container,
        health_port=args.health_port,
    )
    if args.no_wait:
        record = deployments.get(ws, args.name)
    else:
        record = deployments.wait(ws, args.name, echo=None if args.json else sys.stderr.buffer)
    _print_deployment(record, args.json)
    if record.state != deployments.HEALTHY:
        return 1
    if not args.json:
        # Kiln cannot know the body this run() expects, so it names the file, not a made-up one.
        print(
            f"\nscore:  curl -H 'Content-Type: application/json' -d @request.json "
            f"{record.scoring_uri}   (request.json: the body your run() reads)"
            f"\nstop:   kiln deploy delete {record.name}"
        )
    return 0


def deploy_update(args: argparse.Namespace) -> int:
    from kiln.errors import UsageError
    from kiln.serving import deployments
    from kiln.serving.specs import updated_spec

    if args.source_directory != "." and not args.entry_script:
        raise UsageError("`--source-directory` needs `--entry-script` (the new code's entry)")
    ws = workspace(args)
    current = deployments.get(ws, args.name)
    deployments.update(ws, args.name, updated_spec(ws, current.spec, _request(args)))
    record = deployments.wait(ws, args.name, echo=None if args.json else sys.stderr.buffer)
    _print_deployment(record, args.json)
    return 0 if record.state == deployments.HEALTHY and not record.error else 1


def deploy_list(args: argparse.Namespace) -> int:
    from kiln.serving import deployments

    found = deployments.list_deployments(existing_workspace(args))
    if args.json:
        emit_json([r.summary() for r in found])
        return 0
    emit_table(
        ["name", "state", "kind", "scoring uri", "models", "environment"],
        [
            (
                r.name,
                r.state,
                r.kind,
                r.scoring_uri,
                ", ".join(r.spec.models),
                f"{r.spec.env_name}:{r.spec.env_version}",
            )
            for r in found
        ],
    )
    return 0


def deploy_show(args: argparse.Namespace) -> int:
    from kiln.serving import deployments

    _print_deployment(deployments.get(existing_workspace(args), args.name), args.json)
    return 0


def deploy_logs(args: argparse.Namespace) -> int:
    from kiln.serving import deployments

    sys.stdout.write(deployments.logs(existing_workspace(args), args.name))
    return 0


def deploy_delete(args: argparse.Namespace) -> int:
    from kiln.serving import deployments

    deployments.delete(workspace(args), args.name)
    if args.json:
        emit_json({"name": args.name, "deleted": True})
    else:
        print(f"deleted deployment {args.name}")
    return 0
