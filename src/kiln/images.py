"""Environments as OCI images, for ``kiln image`` and the SDK: build one (on the definition's
base image, or on the workspace's default base for a definition without one), describe it,
write the Dockerfile that builds its equivalent, list, push and pull images, and find the
versions whose pinned base image has been patched since (its tag names a new digest).

The building itself is the image builder's (kiln.builders.image), through ``ensure_built``:
an image is a build like any other, cached by its materialization key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiln.builders.oci import imagefile
from kiln.errors import NotFound, UsageError
from kiln.secrets import references

if TYPE_CHECKING:
    from kiln.buildlog import Reporter
    from kiln.builds import Built
    from kiln.catalog import EnvironmentRecord
    from kiln.workspace import Workspace

BASE_IMAGE_VARIABLE = "KILN_BASE_IMAGE"


@dataclass(frozen=True)
class ImageBuild:
    built: Built
    facts: dict[str, Any]  # the image record (kiln.builders.oci.imagefile)

    def summary(self) -> dict[str, Any]:
        """The public ``image`` document; its action is what this call did ("present": the
        image was made earlier, whether built or pulled then)."""
        found = summary(self.built.record, self.built.lock.lock_digest, self.facts)
        return found if self.built.built_now else {**found, "action": "present"}


def summary(record: EnvironmentRecord, lock_digest: str, facts: dict[str, Any]) -> dict[str, Any]:
    base = facts.get("base")
    return {
        "environment": record.reference,
        "build_hash": record.build_hash,
        "lock_digest": lock_digest,
        "image": facts["reference"],
        "digest": facts["digest"],
        "action": facts.get("action", "present"),
        "registry": facts.get("registry"),
        "remote": facts.get("remote"),
        "base": {"reference": base["reference"], "digest": base["digest"]} if base else None,
    }


def default_base_image(workspace: Workspace) -> str | None:
    return workspace.setting("base_image")  # KILN_BASE_IMAGE overrides it


def image_record(workspace: Workspace, record: EnvironmentRecord) -> EnvironmentRecord:
    """``record`` when its definition names a base image; else the same version on the
    workspace's default base image (its own build hash, so its own lock and image)."""
    docker = record.definition.docker
    if docker.base_image:
        return record
    if docker.dockerfile or docker.build_context:
        return record  # the builder says what it cannot build
    base = default_base_image(workspace)
    if base is None:
        raise UsageError(
            f"{record.reference} names no base image: add docker.base_image to its definition, "
            f"or name the workspace's default base image (`kiln init --base-image IMAGE` or "
            f"{BASE_IMAGE_VARIABLE})"
        )
    from kiln.catalog import EnvironmentRecord
    from kiln.environment.canonical import build_hash
    from kiln.fastexec import write_image_link

    definition = record.definition.model_copy(
        update={"docker": docker.model_copy(update={"base_image": base})}
    )
    form = build_hash(definition)
    # For the warm path, which cannot compute a build hash without pydantic (see fastexec).
    write_image_link(workspace.cache_root, record.build_hash, base, form)
    return EnvironmentRecord(
        definition=definition,
        name=record.name,
        version=record.version,
        description=record.description,
        tags=record.tags,
        definition_digest=record.definition_digest,
        build_hash=form,
        created_at=record.created_at,
        archived=record.archived,
        curated=record.curated,
    )


def build(
    workspace: Workspace,
    record: EnvironmentRecord,
    *,
    reporter: Reporter | None = None,
    refresh: bool = False,
    refresh_base: bool = False,
    retry: bool = False,
    pull_only: bool = False,
    no_cache: bool = False,
    push: bool = False,
) -> ImageBuild:
    """The image of ``record``: present, pulled from the registry, or built (``pull_only``
    refuses to build). ``refresh_base`` resolves the base image's tag again; ``no_cache``
    removes this machine's image first and builds anew without asking the registry; ``push``
    makes sure the registry has it afterwards."""
    from kiln.builds import ensure_built

    if push and not workspace.image_registry:
        raise UsageError(_NO_REGISTRY)
    target = image_record(workspace, record)
    if no_cache:
        _forget(workspace, target)
    built = ensure_built(
        workspace,
        target,
        reporter=reporter,
        refresh=refresh or refresh_base,
        refresh_base=refresh_base,
        retry=retry,
        pull_only=pull_only,
        no_cache=no_cache,
    )
    facts = imagefile.read_facts(built.path)
    if push and not facts.get("remote"):
        pushed = _push(workspace, built.path)
        facts = {**facts, "remote": pushed["remote"], "registry": pushed["registry"]}
    return ImageBuild(built, facts)


def _forget(workspace: Workspace, record: EnvironmentRecord) -> None:
    """Remove this machine's image builds of ``record`` (images and cache folders)."""
    from kiln.builders import choice
    from kiln.builds import open_cache

    cache = open_cache(workspace)
    for entry in cache.entries():
        if (
            entry.marker.get("build_hash") == record.build_hash
            and (entry.path / imagefile.FACTS).is_file()
        ):
            builder = choice.get(str(entry.marker.get("builder")))
            if not cache.remove(entry.key, release=builder.remove):
                raise UsageError(
                    f"the image of {record.reference} is in use by a running process; stop it "
                    "and build again"
                )


def _built_image(workspace: Workspace, record: EnvironmentRecord) -> tuple[Path, dict[str, Any]]:
    """The newest image build of ``record`` on this machine (never builds)."""
    from kiln.cache import MARKER, read_marker

    envs = workspace.cache_root / "envs"
    found = []
    for folder in sorted(envs.iterdir()) if envs.is_dir() else []:
        marker = read_marker(folder)
        if marker is None or marker.get("build_hash") != record.build_hash:
            continue
        if (folder / imagefile.FACTS).is_file():
            rank = (int(marker.get("lock_generation") or 0), (folder / MARKER).stat().st_mtime)
            found.append((rank, folder, marker))
    if not found:
        raise NotFound(
            f"{record.reference} has no image on this machine; run `kiln image build {record.reference}`"
        )
    _, folder, marker = max(found, key=lambda item: item[0])
    return folder, marker


def details(
    workspace: Workspace, record: EnvironmentRecord, *, ask_registry: bool = True
) -> dict[str, Any]:
    """``image show``: the image of ``record`` on this machine, asked of the registry too
    (unless not ``ask_registry``: a web page never waits on a registry)."""
    from kiln.builders import choice
    from kiln.builders.oci.registry import manifest_digest, parse

    record = image_record(workspace, record)
    folder, marker = _built_image(workspace, record)
    facts = imagefile.read_facts(folder)
    exists = None
    if ask_registry and facts.get("registry") and facts.get("remote"):
        exists = manifest_digest(parse(facts["registry"]), facts["remote"]) is not None
    return {
        **summary(record, str(marker.get("lock_digest")), facts),
        "exists_in_registry": exists,
        "size_bytes": facts.get("size"),
        "layers": facts.get("layers"),
        "interpreter": str(choice.get(str(marker.get("builder"))).interpreter(folder)),
        "dockerfile": dockerfile_for(record, folder),
    }


def dockerfile(workspace: Workspace, record: EnvironmentRecord) -> str:
    record = image_record(workspace, record)
    folder, _ = _built_image(workspace, record)
    return dockerfile_for(record, folder)


def dockerfile_for(record: EnvironmentRecord, folder: Path) -> str:
    """A Dockerfile that builds the equivalent of the image in ``folder``."""
    from kiln.builders.image import PREFIX
    from kiln.builders.oci.layer import EPOCH

    docker = record.definition.docker
    label = (
        f'LABEL io.kiln.environment="{record.reference}" io.kiln.build-hash="{record.build_hash}"'
    )
    own = docker.dockerfile or (
        f"# build context {docker.build_context}'s {docker.dockerfile_path or 'Dockerfile'} "
        "here, then:"
        if docker.build_context
        else None
    )
    lock_file = folder / "kiln-lock.toml"
    if not lock_file.is_file():  # a user-managed image: built as it is, labels added
        facts = imagefile.read_facts(folder)
        start = own or f"FROM {(facts.get('base') or {}).get('reference', docker.base_image)}"
        return f"# {record.reference}: the user's image as it is, with Kiln's labels\n{start}\n{label}\n"
    base, digest = imagefile.pinned_base(lock_file.read_text(encoding="utf-8"))
    variables = record.definition.environment_variables
    run_with = " ".join(f"-e {k}={_shell_value(v)}" for k, v in sorted(variables.items()))
    repository = base.split("@", 1)[0].rsplit(":", 1)[0] if ":" in base.rsplit("/", 1)[-1] else base
    return "\n".join(
        [
            f"# {record.reference}: the image Kiln builds, as a Dockerfile. Next to it put",
            f"#   requirements.txt  (`kiln env lock {record.reference} -o requirements.txt`)",
            "#   uv                (the uv binary: `pip install uv`, then copy `which uv`)",
            "# Kiln builds the same files without a Dockerfile, so that the same lock on the",
            "# same base always gives the same image digest; this file's digest will differ.",
            own or f"FROM {repository}@{digest}",
            "RUN --mount=type=bind,source=uv,target=/kiln/uv \\",
            "    --mount=type=bind,source=requirements.txt,target=/kiln/requirements.txt \\",
            f"    SOURCE_DATE_EPOCH={EPOCH} /kiln/uv venv --python python3 --no-project {PREFIX} && \\",
            f"    SOURCE_DATE_EPOCH={EPOCH} /kiln/uv pip sync --require-hashes --compile-bytecode \\",
            f"      --python {PREFIX}/bin/python /kiln/requirements.txt",
            f"ENV PATH={PREFIX}/bin:$PATH VIRTUAL_ENV={PREFIX}",
            label,
            *(
                [
                    "# The environment's variables are not in the image (the build hash leaves",
                    f"# them out); Kiln sets them where it runs it, as in: podman run {run_with}",
                ]
                if run_with
                else []
            ),
            "",
        ]
    )


def _shell_value(value: str) -> str:
    """A ${VAR} reference is left for the shell to expand, as Kiln expands it at run time."""
    return f'"{value}"' if references(value) else _quoted(value)


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$") + '"'


def listing(workspace: Workspace) -> list[dict[str, Any]]:
    """Every image build on this machine, least recently used first, with the versions
    (registered or on the default base) that it serves."""
    from kiln.builds import open_cache
    from kiln.cachegc import versions_by_build

    users = versions_by_build(workspace)
    found = []
    for entry in open_cache(workspace).entries():
        if not (entry.path / imagefile.FACTS).is_file():
            continue
        facts = imagefile.read_facts(entry.path)
        records = users.get(str(entry.marker.get("build_hash")), [])
        label = facts.get("environment") or (records[0].reference if records else "(none)")
        found.append(
            {
                "environment": label,
                "build_hash": str(entry.marker.get("build_hash")),
                "lock_digest": str(entry.marker.get("lock_digest")),
                "image": facts["reference"],
                "digest": facts["digest"],
                "action": facts.get("action", "present"),
                "registry": facts.get("registry"),
                "remote": facts.get("remote"),
                "base": facts.get("base"),
            }
        )
    return found


_NO_REGISTRY = (
    "this workspace has no image registry: set one with `kiln init --image-registry URL` "
    "or KILN_IMAGE_REGISTRY"
)


def push(workspace: Workspace, record: EnvironmentRecord) -> dict[str, Any]:
    """Copy the image of ``record`` from this machine's engine store to the registry."""
    if not workspace.image_registry:
        raise UsageError(_NO_REGISTRY)
    record = image_record(workspace, record)
    folder, marker = _built_image(workspace, record)
    facts = _push(workspace, folder)
    return summary(record, str(marker.get("lock_digest")), {**facts, "action": "pushed"})


def _push(workspace: Workspace, folder: Path) -> dict[str, Any]:
    """Push the image of the build in ``folder``; its updated record."""
    from kiln.builders.oci import engine
    from kiln.builders.oci.registry import parse

    assert workspace.image_registry
    facts = imagefile.read_facts(folder)
    registry = parse(workspace.image_registry)
    remote = registry.reference(folder.name)
    engine.run(
        "skopeo",
        [
            "copy",
            "-q",
            *[f"--dest-{flag[2:]}" for flag in registry.tls_args()],
            f"containers-storage:{facts['reference']}",
            f"docker://{remote}",
        ],
        what=f"pushing {remote}",
    )
    facts |= {"registry": registry.url, "remote": remote}
    imagefile.write_facts(folder, facts)
    return facts


def outdated(workspace: Workspace) -> list[dict[str, Any]]:
    """The versions whose newest lock pins a base image digest that its tag no longer names
    (a patched base): they must be rebuilt (``kiln env build --refresh-base``)."""
    from kiln.builders.base import BuildError
    from kiln.builders.oci import dockerbuild
    from kiln.builders.oci.bases import current_digest
    from kiln.builders.oci.registry import parse
    from kiln.buildstore import open_build_store
    from kiln.cachegc import versions_by_build

    registry = parse(workspace.image_registry) if workspace.image_registry else None
    newest: dict[tuple[str, str], Any] = {}
    store = open_build_store(workspace)  # the registry's, or a team server's
    users = versions_by_build(workspace)
    for build_hash in users:
        for row in store.list_locks(build_hash=build_hash):
            newest[(build_hash, row.platform)] = row  # ordered by generation
    current: dict[str, str] = {}
    found = []
    for (build_hash, _), row in sorted(newest.items()):
        try:
            base, pinned = imagefile.pinned_base(row.lock_text)
        except BuildError:
            continue  # not an image lock
        if base.startswith(dockerbuild.REPOSITORY):
            continue  # the definition's own Dockerfile: rebuilt, not pulled by tag
        if base not in current:
            current[base] = current_digest(base, registry)
        if current[base] != pinned:
            found += [
                {
                    "environment": record.reference,
                    "build_hash": build_hash,
                    "lock_generation": row.generation,
                    "base": base,
                    "pinned_digest": pinned,
                    "current_digest": current[base],
                }
                for record in users.get(build_hash, [])
            ]
    return found
