"""What every image build does around the building itself: ask the workspace's registry for
``kiln/env:KEY`` first (present: pull it, never build), otherwise build it into this machine's
engine store as ``localhost/kiln/env:KEY`` and push it. The image record is written last."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiln.builders.base import Activation, BuildContext, BuildError
from kiln.builders.oci import engine, imagefile
from kiln.builders.oci.registry import Registry, manifest_digest, parse
from kiln.builders.uvtool import uv_version

LOCAL_REPOSITORY = "localhost/kiln/env"

# Builds ``localhost/kiln/env:KEY`` (the argument) and returns its facts and where to push
# it from (an "oci:..." layout or "containers-storage:..." reference).
BuildHere = Callable[[str], tuple[dict[str, Any], str]]


def registry_of(ctx: BuildContext) -> Registry | None:
    return parse(ctx.image_registry) if ctx.image_registry else None


def _tls(registry: Registry, side: str) -> list[str]:
    return [f"--{side}-{flag[2:]}" for flag in registry.tls_args()]


def push(source: str, registry: Registry, remote: str, *, log: Any = None) -> str:
    """Copy ``source`` (an "oci:..." layout or "containers-storage:..." reference) to
    ``remote`` in ``registry``; returns the manifest digest the registry now serves."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="kiln-push-") as folder:
        digest_file = Path(folder) / "digest"
        engine.run(
            "skopeo",
            ["copy", "-q", *_tls(registry, "dest"), "--digestfile", str(digest_file), source,
             f"docker://{remote}"],
            what=f"pushing {remote}",
            log=log,
        )  # fmt: skip
        return digest_file.read_text().strip()


def build_or_pull(ctx: BuildContext, dest: Path, build_here: BuildHere) -> dict[str, Any]:
    """The image of the build whose folder is ``dest``: pulled, or built and pushed."""
    key = (ctx.final or dest).name
    local = f"{LOCAL_REPOSITORY}:{key}"
    registry = registry_of(ctx)
    remote = registry.reference(key) if registry else None
    facts: dict[str, Any] = {"reference": local, "registry": registry.url if registry else None}
    present = (
        not ctx.no_cache
        and registry is not None
        and remote is not None
        and manifest_digest(registry, remote)
    )
    if ctx.pull_only and not present:
        where = (
            f"the image registry {registry.url}" if registry else "no image registry (none is set)"
        )
        raise BuildError(f"{remote or local} is not in {where}; build it with `kiln image build`")
    if present and registry is not None and remote is not None:
        ctx.log.phase("pull")
        source = f"docker://{remote}"
        engine.run(
            "skopeo",
            ["copy", "-q", *_tls(registry, "src"), source, f"containers-storage:{local}"],
            what=f"pulling {remote}",
            log=ctx.log,
        )
        facts |= {"action": "pulled", "remote": remote}
    else:
        built, source = build_here(local)
        facts |= built
        if registry is not None and remote is not None:
            ctx.log.phase("push")
            push(source, registry, remote, log=ctx.log)
            facts["remote"] = remote
    facts["digest"] = engine.run(
        "podman", ["image", "inspect", "--format", "{{.Digest}}", local], what=f"inspecting {local}"
    ).strip()
    imagefile.write_facts(dest, facts)
    return facts


def quick_check(dest: Path) -> str | None:
    """The image record is there (no process started: whether the engine still has the image
    is the health check's question)."""
    return None if (dest / imagefile.FACTS).is_file() else "the image's record is missing"


def activation(dest: Path) -> Activation:
    """Commands run in a new container of the image, removed afterwards."""
    reference = imagefile.read_facts(dest)["reference"]
    podman = engine.tools().podman
    return Activation(
        argv=(podman, "run", "--rm", "-i", "--pull=never", "--network=host", reference),
        requires=(str(dest / imagefile.FACTS),),  # what the warm path checks
    )


def tool_versions() -> dict[str, str]:
    return {
        "uv": uv_version(),
        "podman": engine.tool_version("podman"),
        "skopeo": engine.tool_version("skopeo"),
    }


def remove(dest: Path) -> None:
    """The image leaves the engine store (podman refuses while a container uses it)."""
    if not (dest / imagefile.FACTS).is_file():
        return
    reference = imagefile.read_facts(dest).get("reference")
    if reference:
        try:
            engine.run("podman", ["rmi", reference], what=f"removing {reference}")
        except BuildError as exc:
            if "image not known" not in str(exc):
                raise


def installed(image: str, python: str) -> list[dict[str, str]]:
    """The Python distributions ``python`` in ``image`` sees: [{"name", "version"}]."""
    output = engine.run(
        "podman",
        [
            "run",
            "--rm",
            "--pull=never",
            "--network=none",
            image,
            python,
            "-I",
            "-c",
            imagefile.INSTALLED,
        ],
        what=f"listing the Python distributions of {image}",
    )
    return [{"name": n, "version": v} for n, v in json.loads(output)]
