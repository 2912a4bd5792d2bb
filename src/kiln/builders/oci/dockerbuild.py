"""A definition's own Dockerfile (``docker.dockerfile`` text, or ``docker.build_context`` with
``docker.dockerfile_path``: a folder staged from the artifact store, or a git URL's recorded
commit fetched into a temporary folder) built as it is by podman (buildah inside), tagged by
its content so podman's layer cache makes a rebuild of the same Dockerfile instant. Its steps'
output goes to the build log; a failing step fails the build with podman's own words (the
step, its exit status and the last lines), secrets redacted."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from kiln import gitremote
from kiln.builders.base import BuildContext, BuildError
from kiln.builders.oci import bases, engine
from kiln.gitremote import GitUnavailable

if TYPE_CHECKING:
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
    git = docker.git_context
    path = docker.dockerfile_path or ""
    if docker.dockerfile:
        content = docker.dockerfile
    elif git is not None:  # the URL too: it is the image's source label
        content = f"git\0{git.url}\0{docker.build_context_commit}\0{git.subfolder}\0{path}"
    else:
        content = f"{docker.build_context_digest}\0{path}"
    return f"{REPOSITORY}:{hashlib.sha256(content.encode()).hexdigest()[:32]}"


def build(
    definition: EnvironmentDefinition, ctx: BuildContext, *, labels: Mapping[str, str] = {}
) -> str:
    """Build the definition's Dockerfile into this machine's engine store; its reference."""
    tag = tag_of(definition)
    reuse = not labels and not ctx.no_cache
    if reuse and tag in _BUILT:
        return tag
    git = definition.docker.git_context
    # A git context's tag names its commit: an image built under it earlier (any process) is
    # that commit's, so nothing is fetched again.
    if reuse and git is not None and bases.local_digest(tag) is not None:
        _BUILT.add(tag)
        return tag
    ctx.log.phase("dockerfile")
    with tempfile.TemporaryDirectory(prefix="kiln-dockerfile-") as scratch:
        context, dockerfile = _context(definition, ctx, Path(scratch))
        labels = {**git_labels(definition), **labels}
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


def git_labels(definition: EnvironmentDefinition) -> dict[str, str]:
    """Where a git context's image comes from (its URL never holds a credential)."""
    docker = definition.docker
    git = docker.git_context
    if git is None or docker.build_context_commit is None:
        return {}
    return {
        "org.opencontainers.image.source": git.url,
        "org.opencontainers.image.revision": docker.build_context_commit,
    }


def _context(
    definition: EnvironmentDefinition, ctx: BuildContext, scratch: Path
) -> tuple[Path, Path]:
    """The build context folder and the Dockerfile in it."""
    docker = definition.docker
    name = docker.dockerfile_path or "Dockerfile"
    if docker.dockerfile:
        (scratch / "Dockerfile").write_text(docker.dockerfile + "\n", encoding="utf-8")
        return scratch, scratch / "Dockerfile"
    if docker.git_context is not None:
        context, where = _fetched(definition, ctx, scratch)
    elif ctx.build_context is not None:
        context, where = ctx.build_context, "the build context"
    else:
        raise BuildError("`docker.build_context` was not staged for this build")
    if not (context / name).is_file():
        raise BuildError(
            f"`docker.dockerfile_path`: {name} is not in {where}; name the Dockerfile inside "
            "build_context"
        )
    return context, context / name


def _fetched(
    definition: EnvironmentDefinition, ctx: BuildContext, scratch: Path
) -> tuple[Path, str]:
    """A git context's recorded commit, fetched and checked out into ``scratch``."""
    docker = definition.docker
    git = docker.git_context
    commit = docker.build_context_commit
    assert git is not None
    if commit is None:
        raise BuildError(
            "`docker.build_context`: the git URL has no recorded commit; register the definition again"
        )
    ctx.log.write(f"git build context {git.url} ({git.ref or 'HEAD'}) at commit {commit}\n")
    ctx.log.detail(f"fetching {git.url} at {commit[:12]}")
    tree = scratch / "tree"
    try:
        gitremote.fetch(git.url, commit, git.ref, scratch / "repo.git", trees_only=False)
        gitremote.checkout(scratch / "repo.git", commit, tree)
    except GitUnavailable as exc:
        raise BuildError(f"`docker.build_context`: {exc.message}") from None
    context = (tree / git.subfolder).resolve()
    where = f"{git.subfolder or 'the top'} of {git.url} at commit {commit[:12]}"
    if not context.is_relative_to(tree.resolve()) or not context.is_dir():
        raise BuildError(f"`docker.build_context`: {where} is not a folder of the repository")
    return context, where


def _show_step(line: str, ctx: BuildContext) -> None:
    """podman's "STEP 2/5: RUN pip install ..." lines as the display's detail."""
    if line.startswith("STEP "):
        ctx.log.detail(line[len("STEP ") :])
