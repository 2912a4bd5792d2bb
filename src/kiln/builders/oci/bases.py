"""Base images: a tag resolved to the digest it names now (asked of its registry, or of this
machine's engine store for a local image), pulled by that digest, probed for its Python, and
kept as an OCI layout in Kiln's cache so each build only writes its own layers.

A digest, once recorded in a lock, is what every later build uses, wherever it runs: a moved
tag changes nothing until ``--refresh-base`` (Azure's image patching made explicit)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from kiln.builders.base import BuildError, Log
from kiln.builders.interpreters import _PROBE
from kiln.builders.oci import engine
from kiln.builders.oci.registry import Registry

LOCAL = "localhost/"  # an image only this machine's engine store has
BASES = Path("images") / "bases"  # under the cache root: one OCI layout per base digest
TAGS = Path("images") / "tags"  # under the cache root: the digest a tag was last seen to name


@dataclass(frozen=True)
class Base:
    reference: str  # as the definition writes it
    digest: str  # sha256:... of its manifest
    python: str  # its interpreter's path inside the image
    python_version: str  # 3.11.2
    platform: str  # linux-x86_64-cp311

    @property
    def pinned(self) -> str:
        return pinned(self.reference, self.digest)


def pinned(reference: str, digest: str) -> str:
    """``REPO@sha256:...`` for ``REPO:TAG`` (a tag and a digest together confuse engines)."""
    repository = reference.split("@", 1)[0]
    last = repository.rsplit("/", 1)[-1]
    if ":" in last:
        repository = repository[: repository.rfind(":")]
    return f"{repository}@{digest}"


def _tls(reference: str, registry: Registry | None) -> list[str]:
    host = reference.split("/", 1)[0]
    return registry.tls_args() if registry is not None and registry.host == host else []


def current_digest(reference: str, registry: Registry | None, log: Log | None = None) -> str:
    """The digest ``reference`` names now: its registry's answer, or this machine's engine
    store's for an image only it has; BuildError naming the image and the answer otherwise."""
    local = local_digest(reference)
    if reference.startswith(LOCAL):
        if local is None:
            raise BuildError(
                f"base image {reference} is not in this machine's engine store and names no "
                "registry; build or import it first, or name it by its registry"
            )
        return local
    try:
        output = engine.run(
            "skopeo",
            ["inspect", "--raw", *_tls(reference, registry), f"docker://{reference}"],
            what=f"asking the registry for base image {reference}",
            log=log,
        )
    except BuildError as exc:
        if local is not None:  # built or loaded on this machine, not (or no longer) pushed
            return local
        answer = engine.last_message(str(exc))
        raise BuildError(f"base image {reference} cannot be pulled: {answer}") from None
    return f"sha256:{hashlib.sha256(output.encode()).hexdigest()}"


def local_digest(reference: str) -> str | None:
    try:
        digest = engine.run(
            "podman",
            ["image", "inspect", "--format", "{{.Digest}}", reference],
            what=f"looking up {reference}",
        ).strip()
    except BuildError:
        return None
    return digest or None


def ensure_present(base_ref: str, digest: str, registry: Registry | None, log: Log) -> str:
    """The pinned base in this machine's engine store, pulled by digest when absent."""
    image = pinned(base_ref, digest)
    if local_digest(image) is not None:
        return image
    if base_ref.startswith(LOCAL):
        raise BuildError(
            f"base image {image} is not in this machine's engine store (the lock pins that "
            "digest); load that image here, or rebuild onto the current one with --refresh-base"
        )
    log.phase("pull base")
    engine.run(
        "podman", ["pull", "-q", *_tls(base_ref, registry), image], what=f"pulling {image}", log=log
    )
    return image


def probe(
    cache_root: Path, base_ref: str, digest: str, registry: Registry | None, log: Log
) -> Base:
    """The base's interpreter, found by starting it once per digest (remembered)."""
    remembered = cache_root / BASES / f"{digest.split(':')[-1]}.json"
    if remembered.is_file():
        data = json.loads(remembered.read_text(encoding="utf-8"))
        return Base(base_ref, digest, data["python"], data["version"], data["platform"])
    image = ensure_present(base_ref, digest, registry, log)
    script = (
        "for p in python3 python; do command -v $p >/dev/null && exec $p -I -c "
        f'"import sys; print(sys.executable); {_PROBE}"; done; exit 127'
    )
    try:
        output = engine.run(
            "podman",
            ["run", "--rm", "--pull=never", "--network=none", image, "sh", "-c", script],
            what=f"starting Python in {base_ref}",
            log=log,
        )
    except BuildError as exc:
        raise BuildError(
            f"base image {base_ref} has no Python that starts (python3 or python on its PATH); "
            f"use a base image with Python, or a Dockerfile that installs it ({str(exc).splitlines()[-1]})"
        ) from None
    python, facts = output.strip().splitlines()[-2:]
    data = {**json.loads(facts), "python": python}
    remembered.parent.mkdir(parents=True, exist_ok=True)
    remembered.write_text(json.dumps(data), encoding="utf-8")
    return Base(base_ref, digest, python, data["version"], data["platform"])


def remembered_digest(cache_root: Path, reference: str) -> str | None:
    path = cache_root / TAGS / hashlib.sha256(reference.encode()).hexdigest()[:32]
    return path.read_text(encoding="utf-8").strip() if path.is_file() else None


def remember_digest(cache_root: Path, reference: str, digest: str) -> None:
    path = cache_root / TAGS / hashlib.sha256(reference.encode()).hexdigest()[:32]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(digest, encoding="utf-8")


def layout(cache_root: Path, base: Base, registry: Registry | None, log: Log) -> Path:
    """The base as an OCI layout in the cache (made once per digest): copied from its
    registry with its blobs as they are there (so a push of an image built on it sends only
    the new layers), or from this machine's engine store for a local image."""
    folder = cache_root / BASES / base.digest.split(":")[-1]
    if (folder / "index.json").is_file():
        return folder
    if base.reference.startswith(LOCAL):
        source, tls = (
            f"containers-storage:{ensure_present(base.reference, base.digest, registry, log)}",
            [],
        )
    else:
        source, tls = (
            f"docker://{base.pinned}",
            [f"--src-{a[2:]}" for a in _tls(base.reference, registry)],
        )
    staging = folder.with_name(f"{folder.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        engine.run(
            "skopeo",
            ["copy", "-q", *tls, source, f"oci:{staging}:base"],
            what=f"copying base image {base.reference}",
            log=log,
        )
        os.replace(staging, folder)
    except OSError:  # another build made it first
        shutil.rmtree(staging, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder
