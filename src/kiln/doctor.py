"""``kiln doctor``: is this machine ready to build and run environment images? Each check says
what it found, and when it fails, the one thing to do about it. Nothing is created or changed:
the workspace is only opened if one exists, and a container is run only from an image that is
already in the engine store."""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

INSTALL = "apt-get install podman buildah skopeo"
NPROC_CAP = 32768  # machine.md: nproc = min(`ulimit -Hu`, 32768)
REGISTRY_SECONDS = 5.0
PODMAN_DEFAULT_NOFILE = 1048576  # podman's default container nofile limit when none is set


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_checks(*, workspace: str | None = None) -> list[Check]:
    """Every check, in the order a user fixes them: tools, engine, ulimits, uv, workspace,
    registry. ``workspace`` is an explicit workspace path (else the usual discovery)."""
    checks = [_tool(name) for name in ("podman", "skopeo", "buildah")]
    podman = _tool_path("podman")
    if podman is not None:
        info = _podman_info(podman)
        checks.append(info)
        if info.ok:
            checks.append(_ulimits(podman))
    checks.append(_uv())
    checks += _workspace_checks(workspace)
    return checks


def _tool_path(tool: str) -> str | None:
    return os.environ.get(f"KILN_{tool.upper()}") or shutil.which(tool)


def _run(command: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return subprocess.CompletedProcess(command, 127, "", f"{type(exc).__name__}: {exc}")


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1].strip() if lines else "(no output)"


def _tool(tool: str) -> Check:
    path = _tool_path(tool)
    if path is None:
        return Check(tool, False, f"{tool} is not on PATH", f"install it: `{INSTALL}`")
    done = _run([path, "--version"])
    if done.returncode != 0:
        return Check(tool, False, f"`{path} --version` failed: {_last_line(done.stderr)}",
                     f"reinstall it: `{INSTALL}`")  # fmt: skip
    return Check(tool, True, f"{_last_line(done.stdout)} ({path})")


def _podman_info(podman: str) -> Check:
    done = _run([podman, "info", "--format", "{{.Host.OCIRuntime.Name}}"])
    if done.returncode != 0:
        return Check("podman info", False, f"`podman info` failed: {_last_line(done.stderr)}",
                     'set [engine] runtime = "runc" in /etc/containers/containers.conf '
                     "(see `podman info` for the whole error)")  # fmt: skip
    return Check("podman info", True, f"OCI runtime {done.stdout.strip() or '(unknown)'}")


def _ulimits(podman: str) -> Check:
    """A container started from an image in the store, when there is one: the real test of
    this machine's rlimits against containers.conf's default_ulimits. Else the settings."""
    images = _run([podman, "images", "--quiet", "--noheading"]).stdout.split()
    if images:
        done = _run([podman, "run", "--rm", "--pull=never", images[0], "true"], timeout=120)
        # runc applies the rlimits before it looks for the command: an image without `true`
        # still proves they fit.
        if done.returncode == 0 or "executable file not found" in done.stderr:
            return Check("container ulimits", True, f"a container of image {images[0]} started")
        if "rlimit" in done.stderr.lower():
            return Check("container ulimits", False,
                         f"a container cannot start: {_last_line(done.stderr)}", conf_fix())  # fmt: skip
    return _configured_ulimits()


def _configured_ulimits() -> Check:
    hard_nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    hard_nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    configured = _default_ulimits()
    nofile = _hard_limit(configured, "nofile") or PODMAN_DEFAULT_NOFILE
    nproc = _hard_limit(configured, "nproc") or 0  # podman keeps the caller's when unset
    setting = ", ".join(configured) or "(not set)"
    shown = f"default_ulimits {setting}; `ulimit -Hn` {_limit_text(hard_nofile)}"
    too_many = any(
        hard != resource.RLIM_INFINITY and wanted > hard
        for wanted, hard in ((nofile, hard_nofile), (nproc, hard_nproc))
    )
    if too_many:
        return Check("container ulimits", False, f"containers ask for more: {shown}", conf_fix())
    return Check("container ulimits", True, shown)


def conf_fix() -> str:
    """The containers.conf setting that fits this machine's hard limits."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    nofile = PODMAN_DEFAULT_NOFILE if nofile == resource.RLIM_INFINITY else nofile
    nproc = NPROC_CAP if nproc == resource.RLIM_INFINITY else min(nproc, NPROC_CAP)
    where = os.environ.get("CONTAINERS_CONF") or "/etc/containers/containers.conf"
    return (
        f'in {where} set [containers] default_ulimits = ["nofile={nofile}:{nofile}", '
        f'"nproc={nproc}:{nproc}"] (this machine\'s hard limits, `ulimit -Hn` and `ulimit -Hu`)'
    )


def _limit_text(value: int) -> str:
    return "unlimited" if value == resource.RLIM_INFINITY else str(value)


def _hard_limit(ulimits: list[str], name: str) -> int | None:
    for item in ulimits:
        found = re.fullmatch(rf"{name}=(-?\d+)(?::(-?\d+))?", item.strip())
        if found:
            return int(found.group(2) or found.group(1))
    return None


def _containers_confs() -> list[Path]:
    """The containers.conf files podman reads, lowest priority first."""
    if os.environ.get("CONTAINERS_CONF"):
        return [Path(os.environ["CONTAINERS_CONF"])]
    confs = [Path("/usr/share/containers/containers.conf"), Path("/etc/containers/containers.conf")]
    confs += sorted(Path("/etc/containers/containers.conf.d").glob("*.conf"))
    if os.geteuid() != 0:
        confs.append(Path.home() / ".config/containers/containers.conf")
    return confs


def _default_ulimits() -> list[str]:
    """containers.conf's [containers] default_ulimits: the last file that sets it wins."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    chosen: list[str] = []
    for conf in _containers_confs():
        try:
            data = tomllib.loads(conf.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        value = data.get("containers", {}).get("default_ulimits")
        if isinstance(value, list):
            chosen = [str(item) for item in value]
    return chosen


def _uv() -> Check:
    from kiln.builders.base import BuildError
    from kiln.builders.uvtool import uv_binary, uv_version

    try:
        path = uv_binary()
    except BuildError as exc:
        return Check("uv", False, str(exc), "reinstall Kiln (`pip install kiln`), which ships uv")
    return Check("uv", True, f"{uv_version()} ({path})")


def _workspace_checks(explicit: str | None) -> list[Check]:
    from kiln.errors import KilnError
    from kiln.workspace import Workspace

    try:
        ws = Workspace.discover(explicit, create=False)
    except KilnError as exc:
        if explicit or os.environ.get("KILN_WORKSPACE"):
            return [Check("workspace", False, str(exc), "create it with `kiln init PATH`")]
        return [Check("workspace", True, "none here or above (`kiln init` makes one)")]
    if ws.server_url is not None:
        return [_server(ws)]
    try:
        with ws.engine.connect():
            pass
    except Exception as exc:  # any driver's error: reported, never raised
        return [Check("workspace", False, f"{ws.path}: its registry does not open: {exc}",
                      "check the workspace's database_url and that its server runs")]  # fmt: skip
    finally:
        ws.close()
    checks = [Check("workspace", True, str(ws.path))]
    if ws.image_registry:
        checks.append(_registry(ws.image_registry))
    return checks


def _server(ws: Any) -> Check:
    """A Kiln server: it answers, and knows this machine's token."""
    from kiln.errors import KilnError
    from kiln.remoteenvs import client

    try:
        me = client(ws).request("GET", "/whoami")
    except KilnError as exc:
        return Check("workspace", False, f"{ws.server_url}: {exc}",
                     f"start the server, or log in again with `kiln login {ws.server_url}`")  # fmt: skip
    return Check("workspace", True, f"{ws.server_url} (signed in as {me['name']}, {me['role']})")


def _registry(url: str) -> Check:
    """GET /v2/ answers 200 (open) or 401 (asks for credentials) from a registry that runs."""
    import httpx

    from kiln.builders.oci.registry import parse

    fix = ("start the registry, or set the right address with `kiln init --image-registry URL` "
           "or KILN_IMAGE_REGISTRY")  # fmt: skip
    try:
        registry = parse(url)
    except ValueError as exc:
        return Check("image registry", False, str(exc), fix)
    scheme = "http" if registry.insecure else "https"
    try:
        with httpx.Client(timeout=REGISTRY_SECONDS, trust_env=False) as client:
            status = client.get(f"{scheme}://{registry.host}/v2/").status_code
    except httpx.HTTPError as exc:
        return Check("image registry", False,
                     f"{registry.url} did not answer in {REGISTRY_SECONDS:.0f} s ({type(exc).__name__})", fix)  # fmt: skip
    if status not in (200, 401):
        return Check("image registry", False, f"{registry.url} answered {status} to GET /v2/", fix)
    return Check("image registry", True, f"{registry.url} answers GET /v2/ ({status})")
