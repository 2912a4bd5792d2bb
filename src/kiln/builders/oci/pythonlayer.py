"""The environment's Python layer, made inside its base image: a container of the pinned base
runs Kiln's own uv (mounted read-only) to create ``/opt/kiln/env`` on the base's interpreter
and install exactly the lock into it, writing into a host folder mounted there. uv's cache is
the host builds' cache, so packages are downloaded once per machine; bytecode is compiled
with ``SOURCE_DATE_EPOCH`` set, which makes every .pyc hash-checked and reproducible.

Secrets for a private index reach the container as environment variables of the one ``podman
run``: they enter no file of the layer, no image config and no history."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from kiln.builders import venv
from kiln.builders.base import BuildContext, Lock
from kiln.builders.oci import engine
from kiln.builders.oci.bases import Base
from kiln.builders.oci.layer import EPOCH
from kiln.builders.uvindex import index_args
from kiln.builders.uvprogress import UvFollower
from kiln.builders.uvtool import uv_binary
from kiln.environment.definition import EnvironmentDefinition
from kiln.lockexport import to_requirements

CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")


def _ca_bundle() -> str | None:
    """The host's CA bundle, for an index reached through a TLS-intercepting proxy."""
    chosen = os.environ.get("SSL_CERT_FILE")
    candidates = [chosen] if chosen else []
    return next((c for c in [*candidates, *CA_BUNDLES] if Path(c).is_file()), None)


def install(
    definition: EnvironmentDefinition,
    lock: Lock,
    base: Base,
    folder: Path,
    ctx: BuildContext,
    *,
    prefix: PurePosixPath,
) -> None:
    """Create ``folder`` as the venv ``prefix`` of ``base``'s Python, with ``lock`` in it."""
    folder.mkdir(parents=True)
    work = ctx.wheel_root if ctx.local_wheels and ctx.wheel_root else folder.parent / "work"
    work.mkdir(parents=True, exist_ok=True)
    requirements = to_requirements(venv.LOCK_FORMAT, lock.text, header="kiln: the locked packages")
    listing = work / f"requirements.{folder.parent.name}.txt"
    listing.write_text(requirements, encoding="utf-8")
    index = index_args(definition.python.pip, {k: "${" + k + "}" for k in ctx.secrets})
    script = (
        f'/kiln/uv venv -q --python "{base.python}" --no-project {prefix} && '
        f"/kiln/uv pip sync --require-hashes --compile-bytecode --link-mode=copy "
        f"--python {prefix}/bin/python /kiln/work/{listing.name} "
        + " ".join(_shell_word(a) for a in index)
    )
    mounts = [
        f"{folder}:{prefix}",
        f"{ctx.uv_cache}:/kiln/uv-cache",
        f"{uv_binary()}:/kiln/uv:ro",
        f"{work}:/kiln/work:ro",
    ]
    environment = {
        "SOURCE_DATE_EPOCH": str(EPOCH),
        "UV_CACHE_DIR": "/kiln/uv-cache",
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_NO_CONFIG": "1",
        "UV_NO_PROGRESS": "1",
    }
    bundle = _ca_bundle()
    if bundle:
        mounts.append(f"{bundle}:/kiln/ca.crt:ro")
        environment["SSL_CERT_FILE"] = "/kiln/ca.crt"
    ctx.uv_cache.mkdir(parents=True, exist_ok=True)
    args = ["run", "--rm", "--pull=never", "--network=host", "--workdir", "/kiln/work"]
    args += [f"--volume={m}" for m in mounts]
    args += [f"--env={k}={v}" for k, v in environment.items()]
    args += [f"--env={name}" for name in ctx.secrets]  # values from podman's own environment
    try:
        engine.stream(
            "podman",
            [*args, base.pinned, "sh", "-c", script],
            what="installing the lock in the base image",
            log=ctx.log,
            secrets=ctx.secrets,
            env=ctx.secrets,
            on_line=UvFollower(ctx.log),  # uv's messages: what it downloads and installs
        )
    finally:
        listing.unlink(missing_ok=True)
    (folder / "kiln-lock.toml").write_text(lock.text, encoding="utf-8")  # what it was built from


def _shell_word(text: str) -> str:
    """``text`` quoted for sh, leaving ``${NAME}`` to be expanded by the container's shell."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`") + '"'
