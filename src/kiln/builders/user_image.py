"""The ``user-image`` builder: bring your own container (Azure's user-managed dependencies on
a base image, a Dockerfile or a build context). Kiln builds the image as it is and adds only
labels; the lock records which Python distributions the image holds, as the user-managed
builder does for an interpreter on this machine, so runs still say exactly what they used.
Registry caching is the image builder's (kiln.builders.oci.publish)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.builders import user_managed
from kiln.builders.base import BuildContext, BuildError, Lock, Target
from kiln.builders.oci import bases, dockerbuild, engine, imagefile, publish
from kiln.builders.oci.publish import activation as activation
from kiln.builders.oci.publish import quick_check as quick_check
from kiln.builders.oci.publish import remove as remove
from kiln.builders.oci.publish import tool_versions as tool_versions

if TYPE_CHECKING:
    from kiln.environment.definition import EnvironmentDefinition

name = "user-image"
# What build makes is pushed to the workspace's image registry: others pull it.
shared = True
LOCK_FORMAT = user_managed.LOCK_FORMAT


def _source(definition: EnvironmentDefinition, ctx: BuildContext) -> bases.Base:
    """The user's image, built from its Dockerfile or pulled by the digest its tag names."""
    root = ctx.uv_cache.parent
    registry = publish.registry_of(ctx)
    if dockerbuild.has_dockerfile(definition):
        reference = dockerbuild.build(definition, ctx)
        digest = bases.local_digest(reference)
        if digest is None:
            raise BuildError(f"podman built {reference} but does not know it; run `kiln doctor`")
        return bases.probe(root, reference, digest, None, ctx.log)
    reference = str(definition.docker.base_image)
    digest = None if ctx.refresh_base else bases.remembered_digest(root, reference)
    if digest is None:
        digest = bases.current_digest(reference, registry, ctx.log)
        bases.remember_digest(root, reference, digest)
    return bases.probe(root, reference, digest, registry, ctx.log)


def target(definition: EnvironmentDefinition, ctx: BuildContext) -> Target:
    base = _source(definition, ctx)
    return Target(Path(base.python), base.python_version, f"image-{base.platform}")


def resolve(definition: EnvironmentDefinition, target: Target, ctx: BuildContext) -> Lock:
    base = _source(definition, ctx)
    ctx.log.write(f"user-managed image: recording what {base.reference} holds\n")
    packages = publish.installed(
        base.pinned if not dockerbuild.has_dockerfile(definition) else base.reference, base.python
    )
    return Lock(LOCK_FORMAT, json.dumps(packages, indent=1), packages, "kiln")


def build(
    definition: EnvironmentDefinition,
    lock: Lock,
    target: Target,
    dest: Path,
    ctx: BuildContext,
) -> None:
    """The user's image with Kiln's labels, as ``localhost/kiln/env:KEY`` (pulled from the
    registry when it has it, else built and pushed)."""
    (dest / "kiln-lock.json").write_text(lock.text, encoding="utf-8")

    def build_here(local: str) -> tuple[dict[str, Any], str]:
        base = _source(definition, ctx)
        source = base.reference if dockerbuild.has_dockerfile(definition) else base.pinned
        with tempfile.TemporaryDirectory(prefix="kiln-labels-") as folder:
            (Path(folder) / "Containerfile").write_text(f"FROM {source}\n", encoding="utf-8")
            labels = [f"--label={k}={v}" for k, v in sorted(ctx.labels.items())]
            engine.run(
                "podman",
                ["build", "-q", "--pull=never", *labels, "-t", local, folder],
                what="labelling the image",
                log=ctx.log,
            )
        facts = {"action": "built", "base": {"reference": base.reference, "digest": base.digest}}
        return {**facts, "python": base.python}, f"containers-storage:{local}"

    facts = publish.build_or_pull(ctx, dest, build_here)
    if "python" not in facts:  # pulled: the interpreter is the one the target found
        imagefile.write_facts(dest, {**facts, "python": str(target.interpreter)})
    ctx.log.phase("verify")
    reason = health_check(dest, definition)
    if reason is not None:
        raise BuildError(f"the new image failed its health check: {reason}")


def interpreter(dest: Path) -> Path:
    return Path(str(imagefile.read_facts(dest).get("python", "python3")))


def health_check(dest: Path, definition: EnvironmentDefinition) -> str | None:
    """The image's Python starts and still holds what the lock recorded."""
    reason = quick_check(dest)
    if reason is not None:
        return reason
    facts = imagefile.read_facts(dest)
    try:
        found = publish.installed(facts["reference"], str(interpreter(dest)))
    except BuildError as exc:
        return str(exc)
    recorded = json.loads((dest / "kiln-lock.json").read_text(encoding="utf-8"))
    missing = [p for p in recorded if p not in found]
    return f"the image lacks {missing[:5]}" if missing else None


def export_lock(lock: Lock, fmt: str, *, header: str) -> str:
    return user_managed.export_lock(lock, fmt, header=header)
