"""A definition's own Dockerfile (``docker.dockerfile`` text, or ``docker.build_context`` with
``docker.dockerfile_path``) built as it is by podman (buildah inside), tagged by its content so
podman's layer cache makes a rebuild of the same Dockerfile instant. Its steps' output goes to
the build log; a failing step fails the build with podman's own words (the step, its exit
status and the last lines), secrets redacted."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Mapping
from pathlib import Path

from kiln.builders.base import BuildContext, BuildError
from kiln.builders.oci import engine
from kiln.environment.definition import EnvironmentDefinition

REPOSITORY = "localhost/kiln/dockerfile"
_BUILT: set[str] = (
    set()
)  # tags built by this process: a build asks three times (target, lock, image)


def has_dockerfile(definition: EnvironmentDefinition) -> bool:
    return bool(definition.docker.dockerfile or definition.docker.build_context)


def tag_of(definition: EnvironmentDefinition) -> str:
    """The tag a definition's Dockerfile is built under: its content's digest."""
    docker = definition.docker
    content = docker.dockerfile or f"{docker.build_context_digest}\0{docker.dockerfile_path or ''}"
    return f"{REPOSITORY}:{hashlib.sha256(content.encode()).hexdigest()[:32]}"


def build(
    definition: EnvironmentDefinition, ctx: BuildContext, *, labels: Mapping[str, str] = {}
) -> str:
    """Build the definition's Dockerfile into this machine's engine store; its reference."""
    docker = definition.docker
    tag = tag_of(definition)
    if tag in _BUILT and not labels and not ctx.no_cache:
        return tag
    ctx.log.phase("dockerfile")
    with tempfile.TemporaryDirectory(prefix="kiln-dockerfile-") as scratch:
        if docker.dockerfile:
            context = Path(scratch)
            (context / "Dockerfile").write_text(docker.dockerfile + "\n", encoding="utf-8")
            dockerfile = context / "Dockerfile"
        elif ctx.build_context is not None:
            context = ctx.build_context
            dockerfile = context / (docker.dockerfile_path or "Dockerfile")
            if not dockerfile.is_file():
                raise BuildError(
                    f"`docker.dockerfile_path`: {docker.dockerfile_path or 'Dockerfile'} is not "
                    "in the build context; name the Dockerfile inside build_context"
                )
        else:
            raise BuildError("`docker.build_context` was not staged for this build")
        args = ["build", "--layers", "--network=host", "-f", str(dockerfile), "-t", tag]
        args += ["--no-cache"] if ctx.no_cache and tag not in _BUILT else []
        args += [f"--label={key}={value}" for key, value in sorted(labels.items())]
        engine.stream(
            "podman",
            [*args, str(context)],
            what="building the definition's Dockerfile",
            log=ctx.log,
            secrets=ctx.secrets,
            on_line=lambda line: _show_step(line, ctx),
        )
    _BUILT.add(tag)
    return tag


def _show_step(line: str, ctx: BuildContext) -> None:
    """podman's "STEP 2/5: RUN pip install ..." lines as the display's detail."""
    if line.startswith("STEP "):
        ctx.log.detail(line[len("STEP ") :])
