"""The ``image`` builder: an environment as an OCI image, for definitions with a base image.

The lock is the venv builder's pylock.toml, resolved for the base image's Python, with the
base image's digest pinned in its ``[tool.kiln.image]`` table, so the lock digest (and so the
materialization key and the image tag) changes when the base does. A build:

1. asks the workspace's image registry for ``kiln/env:KEY``: present means pull, never build;
2. otherwise runs uv inside the pinned base image to install exactly the lock into
   ``/opt/kiln/env`` (a host folder mounted there, uv's cache shared with the host's builds);
3. writes that folder as one deterministic layer on the base (see oci.layer and oci.layout):
   the same lock on the same base digest gives the same image digest, anywhere;
4. copies the image into this machine's engine store as ``localhost/kiln/env:KEY`` and pushes
   it to the registry.

The materialization folder holds ``image.json`` (what was made, and how) and the lock.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from kiln.builders import venv
from kiln.builders.base import BuildContext, BuildError, Lock, Target
from kiln.builders.oci import bases, dockerbuild, engine, imagefile, publish, pythonlayer
from kiln.builders.oci.layer import Layer, write_layer
from kiln.builders.oci.layout import derive_config, link_blobs, read_image, write_image
from kiln.builders.oci.publish import activation as activation
from kiln.builders.oci.publish import quick_check as quick_check
from kiln.builders.oci.publish import remove as remove
from kiln.builders.oci.publish import tool_versions as tool_versions
from kiln.builders.oci.registry import Registry
from kiln.builders.oci.split import split
from kiln.lockexport import export_pip_lock

if TYPE_CHECKING:
    from kiln.environment.definition import EnvironmentDefinition

name = "image"
# What build makes is pushed to the workspace's image registry: others pull it.
shared = True
LOCK_FORMAT = venv.LOCK_FORMAT
PREFIX = PurePosixPath("/opt/kiln/env")


def target(definition: EnvironmentDefinition, ctx: BuildContext) -> Target:
    """The base image's Python. The tag's digest is remembered per machine; the lock pins the
    digest every build then uses (see ``build``)."""
    known = _known_target(definition, ctx)
    if known is not None:
        return known
    base = _base(definition, ctx)
    wanted = definition.python.version
    if wanted and not _same_release(wanted, base.python_version):
        raise BuildError(
            f"`python.version` {wanted} does not match base image {base.reference}, whose "
            f"Python is {base.python_version}; change python.version or the base image"
        )
    return Target(Path(PREFIX / "bin" / "python"), base.python_version, f"image-{base.platform}")


def _known_target(definition: EnvironmentDefinition, ctx: BuildContext) -> Target | None:
    """The target of a lock the workspace already holds, when this machine has not seen the
    base yet: a machine that pulls the finished image never needs the base image itself."""
    if ctx.refresh_base or dockerbuild.has_dockerfile(definition):
        return None
    reference = _base_reference(definition)
    if bases.remembered_digest(_cache_root(ctx), reference) is not None:
        return None  # seen here: the remembered probe costs nothing
    platform = next((p for p in ctx.known_platforms if p.startswith("image-")), None)
    tag = platform.rsplit("-", 1)[-1] if platform else ""
    if platform is None or not tag.startswith("cp") or len(tag) < 4:
        return None
    version = f"{tag[2]}.{tag[3:]}"
    wanted = definition.python.version
    if wanted and not _same_release(wanted, version):
        return None
    return Target(Path(PREFIX / "bin" / "python"), version, platform)


def _same_release(wanted: str, found: str) -> bool:
    parts = wanted.split(".")
    return found.split(".")[: len(parts)] == parts


def _base(definition: EnvironmentDefinition, ctx: BuildContext) -> bases.Base:
    root = _cache_root(ctx)
    registry = _registry(ctx)
    if dockerbuild.has_dockerfile(definition):
        return _dockerfile_base(definition, ctx)
    reference = _base_reference(definition)
    digest = None if ctx.refresh_base else bases.remembered_digest(root, reference)
    if digest is None:
        digest = bases.current_digest(reference, registry, ctx.log)
        bases.remember_digest(root, reference, digest)
    return bases.probe(root, reference, digest, registry, ctx.log)


def _dockerfile_base(definition: EnvironmentDefinition, ctx: BuildContext) -> bases.Base:
    """The definition's Dockerfile, built (podman's layer cache makes a rebuild instant), as
    the base. Its digest is this machine's own: a Dockerfile rebuilt elsewhere gives another,
    so a lock's pin of it is a record, and the registry is what shares the result."""
    reference = dockerbuild.build(definition, ctx)
    digest = bases.local_digest(reference)
    if digest is None:
        raise BuildError(f"podman built {reference} but does not know it; run `kiln doctor`")
    return bases.probe(_cache_root(ctx), reference, digest, None, ctx.log)


def _base_reference(definition: EnvironmentDefinition) -> str:
    reference = definition.docker.base_image
    if not reference:
        raise BuildError(
            "this definition names no `docker.base_image`; the image builder needs one"
        )
    return reference


def _cache_root(ctx: BuildContext) -> Path:
    return ctx.uv_cache.parent


def _registry(ctx: BuildContext) -> Registry | None:
    return publish.registry_of(ctx)


def resolve(definition: EnvironmentDefinition, target: Target, ctx: BuildContext) -> Lock:
    """The venv builder's resolution for the base's Python minor version, with the base
    image's digest pinned in the lock."""
    from kiln.builders import interpreters

    host = interpreters.find(
        venv.minor_version(target),
        ctx.uv_cache,
        downloads=ctx.python_downloads,
        mirror=ctx.python_mirror,
    )
    lock = venv.resolve(definition, host, ctx)
    base = _base(definition, ctx)
    text = imagefile.pin_base(lock.text, base.reference, base.digest)
    return Lock(LOCK_FORMAT, text, lock.packages, lock.resolver)


def build(
    definition: EnvironmentDefinition,
    lock: Lock,
    target: Target,
    dest: Path,
    ctx: BuildContext,
) -> None:
    """Pull ``kiln/env:KEY`` from the registry when it has it; otherwise build it on the
    pinned base and push it. Then health-check the image."""
    (dest / "kiln-lock.toml").write_text(lock.text, encoding="utf-8")

    def build_here(local: str) -> tuple[dict[str, Any], str]:
        facts = _build_image(definition, lock, target, dest, ctx, local)
        return facts, f"oci:{dest / 'oci'}:image"

    publish.build_or_pull(ctx, dest, build_here)
    shutil.rmtree(dest / "oci", ignore_errors=True)
    ctx.log.phase("verify")
    reason = health_check(dest, definition)
    if reason is not None:
        raise BuildError(f"the new image failed its health check: {reason}")


def _build_image(
    definition: EnvironmentDefinition,
    lock: Lock,
    target: Target,
    dest: Path,
    ctx: BuildContext,
    local: str,
) -> dict[str, Any]:
    """The image built on the lock's base digest into ``dest/oci``, copied to the engine."""
    registry = _registry(ctx)
    base_ref, digest = imagefile.pinned_base(lock.text)
    root = _cache_root(ctx)
    if dockerbuild.has_dockerfile(definition):
        base = _dockerfile_base(definition, ctx)
    else:
        base = bases.probe(root, base_ref, digest, registry, ctx.log)
    if not _same_release(venv.minor_version(target), base.python_version):
        raise BuildError(
            f"the lock was made for Python {target.python_version}, but base image "
            f"{base.pinned} has {base.python_version}; rebuild with --refresh"
        )
    ctx.log.phase("base")
    base_layout = bases.layout(root, base, registry, ctx.log)
    base_image = read_image(base_layout, "base")
    ctx.log.phase("install")
    env_folder = dest / "env"
    pythonlayer.install(definition, lock, base, env_folder, ctx, prefix=PREFIX)
    ctx.log.phase("layer")
    layout = dest / "oci"
    link_blobs(base_layout, layout, base_image)
    parts = split(env_folder)
    layers = [_write_part(env_folder, layout, part.members) for part in parts]
    shutil.rmtree(env_folder)
    config = derive_config(
        base_image,
        layers,
        path_first=str(PREFIX / "bin"),
        # Not the definition's variables: the build hash leaves them out, so definitions that
        # differ only there share this image; Kiln sets them where it runs the image.
        env={"VIRTUAL_ENV": str(PREFIX)},
        labels={
            **ctx.labels,
            "org.opencontainers.image.base.name": base.reference,
            "org.opencontainers.image.base.digest": base.digest,
        },
        history=[f"kiln: {part.name} in {PREFIX} (uv, from the lock)" for part in parts],
    )
    image = write_image(layout, base_image, layers, config, name="image")
    engine.run(
        "skopeo",
        ["copy", "-q", f"oci:{layout}:image", f"containers-storage:{local}"],
        what=f"storing {local}",
        log=ctx.log,
    )
    return {
        "action": "built",
        "manifest_digest": image.digest,
        "base": {"reference": base.reference, "digest": base.digest},
        "size": image.size,
        "layers": len(image.manifest["layers"]),
        "python_layers": [
            {"part": part.name, "digest": layer.digest, "size": layer.size}
            for part, layer in zip(parts, layers, strict=True)
        ],
    }


def _local_facts(local: str) -> str:
    return engine.run(
        "podman", ["image", "inspect", "--format", "{{.Digest}}", local], what=f"inspecting {local}"
    ).strip()


def _write_part(env_folder: Path, layout: Path, members: list[PurePosixPath]) -> Layer:
    """One part of the environment as a layer blob in ``layout``."""
    blobs = layout / "blobs" / "sha256"
    blob = blobs / f"layer.{uuid.uuid4().hex}.partial"
    layer = write_layer(env_folder, PREFIX, blob, members)
    os.replace(blob, blobs / layer.digest.split(":")[1])
    return replace(layer, path=blobs / layer.digest.split(":")[1])


def interpreter(dest: Path) -> Path:
    """The environment's interpreter inside the image."""
    return Path(PREFIX / "bin" / "python")


def health_check(dest: Path, definition: EnvironmentDefinition) -> str | None:
    """The image is in the engine store, its Python starts, and it holds exactly the lock."""
    reason = quick_check(dest)
    if reason is not None:
        return reason
    facts = imagefile.read_facts(dest)
    try:
        found = publish.installed(facts["reference"], "python")
    except BuildError as exc:
        return str(exc)
    installed = {(p["name"].lower(), p["version"]) for p in found}
    locked = venv.packages_of((dest / "kiln-lock.toml").read_text(encoding="utf-8"))
    wanted = {(p["name"].lower(), p["version"]) for p in locked}
    missing = sorted(wanted - installed)
    return f"the image lacks {missing[:5]}" if missing else None


def export_lock(lock: Lock, fmt: str, *, header: str) -> str:
    """As the venv builder's: the base image pin stays in pylock.toml's [tool] table."""
    return export_pip_lock(lock.format, lock.text, fmt, header=header)
