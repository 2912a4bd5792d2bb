"""Container deployments against real podman: the scoring runtime's workers run in containers
of the environment's image (built on the workspace's default base, pushed to and pulled from a
real registry on 127.0.0.1), on the supervisor's socket: create, score, update without a
refused request, a killed container replaced, a killed supervisor shown as Dead with its
containers gone, logs, delete leaving no container, and what cannot start refused in one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiln import catalog
from kiln.environment.validation import validate_definition
from kiln.serving import deployments
from kiln.workspace import Workspace
from kilntesting.images import BaseImage, ImageRegistry
from kilntesting.runs import PYTHON_ONLY, kiln_cli, write_script
from kilntesting.serving import deployment_containers
from kilntesting.serving import post as _post

SCORE = """
    import os, socket
    MODEL_DIR = os.environ["AZUREML_MODEL_DIR"]
    def init():
        global model
        with open(os.path.join(MODEL_DIR, "model.txt")) as file:
            model = file.read()
        if model == "broken":
            raise RuntimeError("cannot load this model")
    def run(raw_data):
        token, host = os.environ.get("API_TOKEN"), socket.gethostname()
        return {"model": model, "token": token, "host": host, "model_dir": MODEL_DIR}
"""
SECRET = "s3cr3t-value-never-on-a-command-line"


def _score(uri: str) -> dict[str, str]:
    status, body = _post(uri)
    assert status == 200, body
    answer: dict[str, str] = json.loads(body)
    return answer


def _podman(*args: str) -> str:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _model(ws: Workspace, cache: Path, tmp_path: Path, text: str) -> None:
    folder = tmp_path / f"model-{text}"
    folder.mkdir()
    (folder / "model.txt").write_text(text)
    registered = kiln_cli(
        ws, cache, "model", "register", "-n", "m", "-p", str(folder / "model.txt")
    )
    assert registered.returncode == 0, registered.stderr


def _wait_for(check: object, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.1)


@pytest.fixture
def imaged(
    tmp_path: Path, image_registry: ImageRegistry, base_image: BaseImage
) -> Iterator[Workspace]:
    """A workspace with a registry and a default base image; ``py`` names no base of its own."""
    ws = Workspace.create(
        tmp_path / "project", image_registry=image_registry.url, base_image=base_image.registry_ref
    )
    catalog.register(ws, validate_definition(PYTHON_ONLY))
    yield ws
    ws.close()


def test_a_container_deployment_serves_updates_restarts_dies_and_is_deleted(
    imaged: Workspace, tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_script(tmp_path / "serve", "score.py", SCORE)
    _model(imaged, cache_dir, tmp_path, "one")
    monkeypatch.setenv("SERVICE_TOKEN", SECRET)
    create = ["deploy", "create", "-n", "web", "--model", "m:1", "--entry-script", "score.py"]
    create += ["-d", str(tmp_path / "serve"), "--env", "py", "--container", "--json"]
    create += ["--env-var", "API_TOKEN=${SERVICE_TOKEN}"]
    created = kiln_cli(imaged, cache_dir, *create, timeout=600)
    assert created.returncode == 0, (
        created.stderr + kiln_cli(imaged, cache_dir, "deploy", "logs", "web").stdout
    )
    info = json.loads(created.stdout)
    assert (info["state"], info["kind"]) == ("Healthy", "container")
    assert info["image_digest"].startswith("sha256:") and info["image"].startswith("localhost/")
    uri = info["scoring_uri"]
    assert uri.startswith("http://127.0.0.1:")

    # The runtime serves inside the container, on the supervisor's socket.
    answer = _score(uri)
    assert answer["model"] == "one" and answer["token"] == SECRET
    [first] = info["containers"]
    assert deployment_containers(imaged, "web") == [first]
    assert answer["host"] == _podman("inspect", "--format", "{{.Config.Hostname}}", first).strip()
    assert answer["model_dir"] == "/kiln/models/m/1"
    inspected = json.loads(_podman("inspect", first))[0]
    assert inspected["ImageDigest"] == info["image_digest"]
    assert not inspected["NetworkSettings"]["Ports"]  # nothing published: the socket is Kiln's
    mounts = {m["Destination"]: m["RW"] for m in inspected["Mounts"]}
    assert mounts == {"/kiln/python/kiln": False, "/kiln/src": False, "/kiln/models": False}
    assert SECRET not in json.dumps(inspected["Config"]["Cmd"])
    assert SECRET not in " ".join(inspected["Args"])
    for pid in _podman_clients():
        assert SECRET not in Path(f"/proc/{pid}/cmdline").read_text()

    # An update starts new containers on the same socket before the old ones stop.
    _model(imaged, cache_dir, tmp_path, "two")
    statuses: list[int] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            try:
                statuses.append(_post(uri)[0])
            except OSError:  # refused or reset: what an update must never cause
                statuses.append(-1)

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        updated = kiln_cli(imaged, cache_dir, "deploy", "update", "web", "--model", "m:2", "--json")
    finally:
        stop.set()
        thread.join()
    assert updated.returncode == 0, updated.stderr
    after = json.loads(updated.stdout)
    assert statuses and set(statuses) == {200}
    assert _score(uri)["model"] == "two" and after["serving_generation"] == 2
    [second] = after["containers"]
    assert second != first and deployment_containers(imaged, "web") == [second]

    # A killed container is replaced, as a dead worker process is.
    _podman("kill", second)
    _wait_for(
        lambda: deployments.get(imaged, "web").containers not in ([], [second]), "a replacement"
    )
    assert _score(uri)["model"] == "two"
    assert deployments.get(imaged, "web").state == "Healthy"

    # A dead supervisor: Dead, and its containers stop with it.
    record = deployments.get(imaged, "web")
    os.kill(int(str(record.supervisor).split(":")[1]), signal.SIGKILL)
    _wait_for(lambda: deployments.get(imaged, "web").state == "Dead", "Dead")
    listed = json.loads(kiln_cli(imaged, cache_dir, "deploy", "list", "--json").stdout)
    assert [(d["name"], d["state"]) for d in listed] == [("web", "Dead")]
    _wait_for(lambda: not deployment_containers(imaged, "web"), "the containers to stop")

    logs = kiln_cli(imaged, cache_dir, "deploy", "logs", "web").stdout
    assert "POST /score 200" in logs and "worker" in logs and SECRET not in logs
    deleted = kiln_cli(imaged, cache_dir, "deploy", "delete", "web", "--json")
    assert json.loads(deleted.stdout) == {"name": "web", "deleted": True}
    assert deployment_containers(imaged, "web") == []
    assert kiln_cli(imaged, cache_dir, "deploy", "list", "--json").stdout.strip() == "[]"


def _podman_clients() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if argv[0].endswith(b"podman") and b"run" in argv:
                found.append(int(entry.name))
    return found


def _create(
    ws: Workspace, cache: Path, tmp_path: Path, *extra: str, env: str = "py"
) -> subprocess.CompletedProcess[str]:
    write_script(tmp_path / "serve", "score.py", SCORE)
    _model(ws, cache, tmp_path, "one")
    create = ["deploy", "create", "-n", "web", "--model", "m:1", "--entry-script", "score.py"]
    create += ["-d", str(tmp_path / "serve"), "--env", env, "--container", *extra]
    return kiln_cli(ws, cache, *create, timeout=600)


def _with_docker_run(ws: Workspace, **docker: object) -> str:
    """``py`` with Azure ML v1's docker run settings (the same build, so the same image)."""
    catalog.register(ws, validate_definition({**PYTHON_ONLY, "name": "pyrun", "docker": docker}))
    return "pyrun"


def test_the_definitions_docker_run_settings_reach_the_workers_containers(
    imaged: Workspace, tmp_path: Path, cache_dir: Path
) -> None:
    env = _with_docker_run(imaged, shm_size="80m", arguments=["--hostname=kiln-dep-host"])
    created = _create(imaged, cache_dir, tmp_path, "--json", env=env)
    assert created.returncode == 0, created.stderr
    info = json.loads(created.stdout)
    try:
        assert _score(info["scoring_uri"])["host"] == "kiln-dep-host"
        [container] = info["containers"]
        shm = _podman("inspect", "--format", "{{.HostConfig.ShmSize}}", container).strip()
        assert int(shm) == 80 * 1024 * 1024
    finally:
        assert kiln_cli(imaged, cache_dir, "deploy", "delete", "web").returncode == 0


def test_docker_arguments_a_deployment_cannot_take_are_refused_in_one_line(
    imaged: Workspace, tmp_path: Path, cache_dir: Path
) -> None:
    env = _with_docker_run(imaged, arguments=["--ipc=private", "--network=host"])
    result = _create(imaged, cache_dir, tmp_path, env=env)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "`docker.arguments[1]` '--network=host': --network is Kiln's to set" in result.stderr
    assert "serve on the supervisor's socket" in result.stderr
    assert kiln_cli(imaged, cache_dir, "deploy", "list", "--json").stdout.strip() == "[]"


def test_an_environment_without_a_base_image_is_refused_in_one_line(
    project: Workspace, tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KILN_BASE_IMAGE", raising=False)
    result = _create(project, cache_dir, tmp_path)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "py:1 names no base image" in result.stderr
    assert "kiln init --base-image IMAGE" in result.stderr
    assert kiln_cli(project, cache_dir, "deploy", "list", "--json").stdout.strip() == "[]"


def test_without_podman_a_container_deployment_is_refused_naming_the_fix(
    project: Workspace, tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KILN_BASE_IMAGE", "localhost/any:1")
    monkeypatch.delenv("KILN_PODMAN", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    result = _create(project, cache_dir, tmp_path)
    assert result.returncode == 5
    assert result.stderr.startswith(
        "kiln: error: `--container`: a container deployment needs podman"
    )
    assert "apt-get install podman" in result.stderr and "without --container" in result.stderr
    monkeypatch.undo()
    assert kiln_cli(project, cache_dir, "deploy", "list", "--json").stdout.strip() == "[]"


def test_an_image_that_cannot_be_had_fails_the_deployment_with_the_reason(
    project: Workspace,
    tmp_path: Path,
    cache_dir: Path,
    image_registry: ImageRegistry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KILN_BASE_IMAGE", f"{image_registry.host}/kiln-test/no-such-image:1")
    result = _create(project, cache_dir, tmp_path, "--json")
    assert result.returncode == 1
    info = json.loads(result.stdout)
    assert info["state"] == "Failed" and "no-such-image:1 cannot be pulled" in info["error"]
    assert deployment_containers(project, "web") == []
    assert kiln_cli(project, cache_dir, "deploy", "delete", "web").returncode == 0
