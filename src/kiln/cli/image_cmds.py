"""``kiln image ...``: environments as OCI images, cached in the workspace's image registry."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from kiln.cli.common import existing_workspace, workspace
from kiln.cli.output import add_json, emit_fields, emit_json, emit_table

if TYPE_CHECKING:
    from kiln.catalog import EnvironmentRecord
    from kiln.workspace import Workspace

DESCRIPTION = """\
An environment whose definition names a base image (docker.base_image) is built into an OCI
image: its exact lock installed by uv into /opt/kiln/env on the base image's Python, as one
reproducible layer (the same lock on the same base digest gives the same image digest).
Images are named by the build's key; with an image registry (kiln init --image-registry URL
or KILN_IMAGE_REGISTRY) every machine pulls what another built. Base images are pinned by
digest at the first build; `kiln image outdated` lists versions whose base has moved on."""


def add_parser(groups: Any) -> None:
    images = groups.add_parser(
        "image",
        help="environments as OCI images (build, show, push, pull, outdated bases)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = images.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    p = commands.add_parser("build", help="build (or pull) the image of an environment version")
    p.add_argument("reference", metavar="NAME[:VERSION]")
    p.add_argument("--refresh", action="store_true", help="re-resolve into a new lock generation")
    p.add_argument(
        "--refresh-base",
        action="store_true",
        help="rebuild onto the digest the base image's tag names now (a new lock generation)",
    )
    p.add_argument("--retry", action="store_true", help="retry now even if it failed moments ago")
    p.add_argument(
        "--push", action="store_true", help="make sure the workspace's registry has it afterwards"
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="build anew: remove this machine's image, ask no registry, use no layer cache",
    )
    add_json(p, "image")
    p.set_defaults(handler=build)

    p = commands.add_parser(
        "pull", help="pull the image from the workspace's registry (never builds)"
    )
    p.add_argument("reference", metavar="NAME[:VERSION]")
    add_json(p, "image")
    p.set_defaults(handler=pull)

    p = commands.add_parser("push", help="push the image to the workspace's registry")
    p.add_argument("reference", metavar="NAME[:VERSION]")
    add_json(p, "image")
    p.set_defaults(handler=push)

    p = commands.add_parser("show", help="the image of a version: digest, base, registry, layers")
    p.add_argument("reference", metavar="NAME[:VERSION]")
    add_json(p, "image-detail")
    p.set_defaults(handler=show)

    p = commands.add_parser(
        "dockerfile", help="print a Dockerfile that builds the equivalent image"
    )
    p.add_argument("reference", metavar="NAME[:VERSION]")
    p.set_defaults(handler=dockerfile)

    p = commands.add_parser("list", help="the images built or pulled on this machine")
    add_json(p, "image-list")
    p.set_defaults(handler=list_images)

    p = commands.add_parser(
        "outdated", help="versions whose pinned base image digest is no longer its tag's"
    )
    add_json(p, "outdated-image-list")
    p.set_defaults(handler=outdated)


def _record(ws: Workspace, text: str) -> EnvironmentRecord:
    from kiln import catalog

    return catalog.get(ws, *catalog.parse_reference(text))


def _print_image(summary: dict[str, Any]) -> None:
    verb = {"built": "Built", "pulled": "Pulled", "present": "Ready", "pushed": "Pushed"}
    print(
        f"{verb.get(summary['action'], summary['action'])} {summary['image']} ({summary['environment']})"
    )
    print(f"digest  {summary['digest']}")
    if summary.get("remote"):
        print(f"remote  {summary['remote']}")


def _build(args: argparse.Namespace, **options: bool) -> int:
    from kiln import images
    from kiln.progress import Progress

    ws = workspace(args)
    record = _record(ws, args.reference)
    progress = Progress(f"image {record.reference}", plain=getattr(args, "json", False))
    try:
        result = images.build(ws, record, reporter=progress, **options)
    finally:
        progress.done()
    summary = result.summary()
    if args.json:
        emit_json(summary)
    else:
        _print_image(summary)
    return 0


def build(args: argparse.Namespace) -> int:
    return _build(
        args,
        refresh=args.refresh,
        refresh_base=args.refresh_base,
        retry=args.retry,
        push=args.push,
        no_cache=args.no_cache,
    )


def pull(args: argparse.Namespace) -> int:
    return _build(args, pull_only=True)


def push(args: argparse.Namespace) -> int:
    from kiln import images

    ws = existing_workspace(args)
    summary = images.push(ws, _record(ws, args.reference))
    if args.json:
        emit_json(summary)
    else:
        _print_image(summary)
    return 0


def show(args: argparse.Namespace) -> int:
    from kiln import images

    ws = existing_workspace(args)
    detail = images.details(ws, _record(ws, args.reference))
    if args.json:
        emit_json(detail)
        return 0
    base = detail["base"] or {}
    exists = {None: "(no registry)", True: "yes", False: "no"}[detail["exists_in_registry"]]
    emit_fields(
        [
            ("environment", detail["environment"]),
            ("image", detail["image"]),
            ("digest", detail["digest"]),
            ("registry", detail["registry"] or "(engine store only)"),
            ("remote", detail["remote"] or ""),
            ("in registry", exists),
            ("base image", base.get("reference", "")),
            ("base digest", base.get("digest", "")),
            ("size", f"{(detail['size_bytes'] or 0) / 1e6:.1f} MB"),
            ("layers", detail["layers"]),
            ("interpreter", detail["interpreter"]),
        ]
    )
    print("\n" + detail["dockerfile"], end="")
    return 0


def dockerfile(args: argparse.Namespace) -> int:
    from kiln import images

    ws = existing_workspace(args)
    print(images.dockerfile(ws, _record(ws, args.reference)), end="")
    return 0


def list_images(args: argparse.Namespace) -> int:
    from kiln import images

    found = images.listing(existing_workspace(args))
    if args.json:
        emit_json(found)
    else:
        emit_table(
            ["environment", "image", "digest", "remote"],
            [(i["environment"], i["image"], i["digest"][:19], i["remote"] or "") for i in found],
        )
    return 0


def outdated(args: argparse.Namespace) -> int:
    from kiln import images

    found = images.outdated(existing_workspace(args))
    if args.json:
        emit_json(found)
    elif not found:
        print("every image's base is current")
    else:
        emit_table(
            ["environment", "base", "pinned", "current"],
            [
                (o["environment"], o["base"], o["pinned_digest"][:19], o["current_digest"][:19])
                for o in found
            ],
        )
        print("rebuild them with `kiln image build NAME:VERSION --refresh-base`")
    return 0
