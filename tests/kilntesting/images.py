"""Container-image test infrastructure, a pytest plugin (register it with ``pytest_plugins``).

Session fixtures: ``container_engine`` (podman, buildah and skopeo that work), ``image_registry``
(Debian's ``docker-registry`` on a free 127.0.0.1 port, stopped by its PID), ``base_image``
(scripts/containers.sh's cached debootstrap tarball, imported once and pushed to the session's
registry). Function fixture: ``engine_store``, an empty containers storage for "a second machine".
Without the tools the fixtures skip with the fix, and fail under CI (``CI=true``), where
scripts/test.sh has run scripts/containers.sh.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from kiln import catalog
from kiln.environment.validation import validate_definition
from kiln.filelocks import held
from kiln.workspace import Workspace
from kilntesting.runs import PYTHON_ONLY

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "containers.sh"
FIX = f"run `bash {SCRIPT}` as root"
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
BASE_REPOSITORY = "kiln-test/debian-python"
TARBALL_LABEL = "kiln.test.tarball-sha256"
# Loopback only: never through a proxy from the environment.
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def unavailable(reason: str) -> None:
    """Skip with the reason and the fix; under CI a missing tool is a failure."""
    message = f"{reason}; {FIX}"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


def base_image_version() -> str:
    """The base image recipe's version, from scripts/containers.sh (``BASE_VERSION=v1``)."""
    found = re.search(r"^BASE_VERSION=(\S+)$", SCRIPT.read_text(), re.MULTILINE)
    assert found, f"no BASE_VERSION= line in {SCRIPT}"
    return found.group(1)


def cache_dir() -> Path:
    return Path(os.environ.get("KILN_TEST_CACHE") or "/var/cache/kiln-test")


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    """Run a command; its stdout, or an AssertionError carrying its stderr."""
    done = subprocess.run(
        args, capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}"
    return done.stdout


@dataclass(frozen=True)
class ContainerEngine:
    podman: str
    buildah: str
    skopeo: str
    runtime: str  # the OCI runtime podman uses ("runc")


@dataclass(frozen=True)
class ManifestAnswer:
    status: int
    digest: str | None  # Docker-Content-Digest, when the registry sent one


@dataclass(frozen=True)
class ImageRegistry:
    url: str  # http://127.0.0.1:PORT
    host: str  # 127.0.0.1:PORT, as image references spell it
    root: Path  # the registry's filesystem storage
    pid: int

    def manifest(self, repo: str, tag: str) -> ManifestAnswer:
        """HEAD /v2/REPO/manifests/TAG with the OCI and Docker manifest types accepted."""
        request = urllib.request.Request(
            f"{self.url}/v2/{repo}/manifests/{tag}",
            method="HEAD",
            headers={"Accept": ", ".join(MANIFEST_TYPES)},
        )
        try:
            with _LOCAL.open(request, timeout=10) as response:
                return ManifestAnswer(response.status, response.headers["Docker-Content-Digest"])
        except urllib.error.HTTPError as error:
            return ManifestAnswer(error.code, None)

    def manifest_status(self, repo: str, tag: str) -> int:
        return self.manifest(repo, tag).status

    def delete_manifest(self, repo: str, digest: str) -> int:
        """DELETE /v2/REPO/manifests/DIGEST (deletes are enabled): 202, or the error's status."""
        request = urllib.request.Request(
            f"{self.url}/v2/{repo}/manifests/{digest}", method="DELETE"
        )
        try:
            with _LOCAL.open(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return error.code

    def registries_conf(self, folder: Path) -> dict[str, str]:
        """A registries.conf listing this registry as insecure (plain HTTP), the alternative to
        ``--tls-verify=false`` flags: the environment that makes podman and buildah read it
        instead of /etc/containers/registries.conf. skopeo 1.9 ignores the variable: give it
        ``--registries-conf`` with the same path."""
        folder.mkdir(parents=True, exist_ok=True)
        conf = folder / "registries.conf"
        conf.write_text(f'[[registry]]\nlocation = "{self.host}"\ninsecure = true\n')
        return {"CONTAINERS_REGISTRIES_CONF": str(conf)}


@dataclass(frozen=True)
class BaseImage:
    local_ref: str  # localhost/kiln-test/debian-python:bookworm-VERSION in the machine's store
    registry_ref: str  # HOST/kiln-test/debian-python:bookworm in the session's registry
    digest: str  # the registry's manifest digest (sha256:...)
    python_version: str  # the exact python3 inside it ("3.11.2")
    tarball: Path


@dataclass(frozen=True)
class EngineStore:
    root: Path  # graphroot is root/graph
    runroot: Path
    storage_conf: Path
    env: dict[str, str]  # the variables that point podman, buildah and skopeo at this store

    def environ(self) -> dict[str, str]:
        """os.environ with this store's variables: pass it as a subprocess's ``env``."""
        return {**os.environ, **self.env}


def check_engine() -> ContainerEngine:
    tools = {name: shutil.which(name) for name in ("podman", "buildah", "skopeo")}
    missing = [name for name, path in tools.items() if path is None]
    if missing:
        unavailable(f"no container engine: {', '.join(missing)} missing")
    info = subprocess.run(
        ["podman", "info", "--format", "{{.Host.OCIRuntime.Name}}"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    if info.returncode != 0:
        unavailable(f"`podman info` failed: {info.stderr.strip()[-500:]}")
    return ContainerEngine(
        podman=str(tools["podman"]),
        buildah=str(tools["buildah"]),
        skopeo=str(tools["skopeo"]),
        runtime=info.stdout.strip(),
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _registry_config(root: Path, port: int) -> Path:
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log: {level: warn}\n"
        f"storage:\n  filesystem: {{rootdirectory: {root / 'data'}}}\n  delete: {{enabled: true}}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    return config


def _wait_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> bool:
    """Poll GET /v2/ for up to 15 s; False when the registry exited (its port was taken)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with _LOCAL.open(f"{url}/v2/", timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    _stop(process)
    raise AssertionError(f"docker-registry not ready at {url} in 15 s: {log.read_text()[-2000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def served_registry(root: Path) -> Iterator[ImageRegistry]:
    """``docker-registry serve`` (distribution 2.8) on a free 127.0.0.1 port, filesystem storage
    under ``root``, deletes enabled; stopped by its PID. A port taken between the probe and the
    bind makes the registry exit: it is tried again on another port."""
    if shutil.which("docker-registry") is None:
        unavailable("no docker-registry (Debian's distribution)")
    root.mkdir(parents=True, exist_ok=True)
    log = root / "registry.log"
    for _attempt in range(5):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with log.open("ab") as sink:
            process = subprocess.Popen(
                ["docker-registry", "serve", str(_registry_config(root, port))],
                stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )  # fmt: skip
        if _wait_ready(process, url, log):
            break
    else:
        raise AssertionError(f"docker-registry did not start: {log.read_text()[-2000:]}")
    try:
        yield ImageRegistry(url=url, host=url.removeprefix("http://"), root=root, pid=process.pid)
    finally:
        _stop(process)


def read_base_metadata() -> tuple[Path, dict[str, str]]:
    """The cached tarball and its JSON (python_version, tarball_sha256, mirror)."""
    name = f"debian-python-bookworm-{base_image_version()}"
    tarball, meta = cache_dir() / f"{name}.tar", cache_dir() / f"{name}.json"
    if not (tarball.is_file() and meta.is_file()):
        unavailable(f"no base image tarball {tarball}")
    return tarball, json.loads(meta.read_text())


def import_base_image(local_ref: str, tarball: Path, sha256: str) -> None:
    """``podman import`` the tarball unless the image is there already, made from these bytes;
    the image of an earlier tarball is removed (kept if a container still uses it)."""
    label = f'{{{{.Id}}}} {{{{index .Labels "{TARBALL_LABEL}"}}}}'
    inspected = subprocess.run(
        ["podman", "image", "inspect", "--format", label, local_ref],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    previous = inspected.stdout.split() if inspected.returncode == 0 else []
    if previous[1:] == [sha256]:
        return
    run("podman", "import", "--quiet", "--change", f"LABEL {TARBALL_LABEL}={sha256}",
        str(tarball), local_ref)  # fmt: skip
    if previous:
        subprocess.run(["podman", "rmi", previous[0]], capture_output=True, check=False)


def unmount_under(root: Path) -> None:
    """Unmount whatever is mounted below ``root`` (overlay layers, shm), deepest first."""
    prefix = str(root.resolve()) + "/"
    mounts = [
        line.split()[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split()[4].startswith(prefix)
    ]
    for mount in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True, check=False)


@pytest.fixture(scope="session")
def container_engine() -> ContainerEngine:
    """podman, buildah and skopeo that work (``podman info`` answers)."""
    return check_engine()


@pytest.fixture(scope="session")
def image_registry(
    container_engine: ContainerEngine, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ImageRegistry]:
    """A session's own image registry on 127.0.0.1 (plain HTTP)."""
    with served_registry(tmp_path_factory.mktemp("registry")) as registry:
        yield registry


@pytest.fixture(scope="session")
def base_image(
    image_registry: ImageRegistry, tmp_path_factory: pytest.TempPathFactory
) -> BaseImage:
    """Debian bookworm + python3 from the cached tarball: in the machine's store and pushed to
    the session's registry."""
    tarball, meta = read_base_metadata()
    local_ref = f"localhost/{BASE_REPOSITORY}:bookworm-{base_image_version()}"
    # xdist workers share the machine's store: one imports, the others find it.
    with held(tmp_path_factory.getbasetemp().parent / "kiln-base-image.lock"):
        import_base_image(local_ref, tarball, meta["tarball_sha256"])
    registry_ref = f"{image_registry.host}/{BASE_REPOSITORY}:bookworm"
    run("skopeo", "copy", "--quiet", "--dest-tls-verify=false",
        f"containers-storage:{local_ref}", f"docker://{registry_ref}")  # fmt: skip
    answer = image_registry.manifest(BASE_REPOSITORY, "bookworm")
    assert answer.status == 200 and answer.digest, f"pushed {registry_ref}, registry says {answer}"
    return BaseImage(
        local_ref=local_ref,
        registry_ref=registry_ref,
        digest=answer.digest,
        python_version=meta["python_version"],
        tarball=tarball,
    )


@pytest.fixture
def engine_store(container_engine: ContainerEngine, tmp_path: Path) -> Iterator[EngineStore]:
    """A fresh, empty containers storage (overlay), as on a second machine: images under
    tmp_path, run state under a short /tmp folder (conmon's sockets live there and a long
    runroot makes every ``podman run`` wait 20 s for conmon's timeout)."""
    root = tmp_path / "engine-store"
    root.mkdir()
    runroot = Path(tempfile.mkdtemp(prefix="kst-", dir="/tmp"))
    conf = root / "storage.conf"
    conf.write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{root / "graph"}"\nrunroot = "{runroot}"\n'
    )
    try:
        yield EngineStore(
            root=root,
            runroot=runroot,
            storage_conf=conf,
            env={"CONTAINERS_STORAGE_CONF": str(conf)},
        )
    finally:
        for folder in (runroot, root):
            unmount_under(folder)
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def image_project(
    tmp_path: Path, image_registry: ImageRegistry, base_image: BaseImage
) -> Iterator[Workspace]:
    """An embedded workspace like ``project`` (the python-only environment ``py``, no base
    image of its own) whose image registry is the session's and whose default base image is
    the test base: its runs on the container target run in ``py``'s image on that base."""
    ws = Workspace.create(
        tmp_path / "project", image_registry=image_registry.url, base_image=base_image.registry_ref
    )
    catalog.register(ws, validate_definition(PYTHON_ONLY))
    yield ws
    ws.close()


def container_exists(name: str, env: dict[str, str] | None = None) -> bool:
    """Whether the engine (the machine's, or the store ``env`` names) has a container ``name``."""
    done = subprocess.run(
        ["podman", "container", "exists", name], capture_output=True, env=env, check=False
    )
    return done.returncode == 0
