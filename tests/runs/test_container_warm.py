"""The warm path of the container target (real podman, the test base image): a run whose image
is already here starts without SQLAlchemy, pydantic or the builders, and a pointer that no
longer holds (the image removed, another definition, another default base) falls back to the
full path, which still runs the script. Also the definition's docker run settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from kiln.cache import Cache
from kiln.ready import held_if_warm
from kiln.runs.store import RunStore
from kiln.workspace import Workspace
from kilntesting.cli import KILN
from kilntesting.images import BaseImage
from kilntesting.runs import address, kiln_cli, write_script

HEAVY = ("sqlalchemy", "pydantic", "alembic", "kiln.builders", "kiln.catalog", "kiln.builds")
SCRIPT = """
    import os, sys
    from kiln import Run
    Run.get_context().log("answer", 42)
    print("in", sys.executable, "shm", os.statvfs("/dev/shm").f_blocks * os.statvfs("/dev/shm").f_frsize, flush=True)
"""


def _submit(
    ws: Workspace, cache: Path, *extra: str, env: str = "py", base: str | None = None
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """``kiln run submit --target container`` of SCRIPT, and every module it imported."""
    src = ws.path / "src"
    write_script(src, "probe.py", SCRIPT)
    variables = {**os.environ, "KILN_WORKSPACE": address(ws), "KILN_CACHE_DIR": str(cache)}
    if base is not None:
        variables["KILN_BASE_IMAGE"] = base
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *KILN[1:], "run", "submit", "--json",
         "--target", "container", "--env", env, *extra, "-d", str(src), "probe.py"],
        env=variables, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    modules = {line.split("|")[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    return result, modules


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.startswith(HEAVY))


def _completed(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert result.returncode == 0, result.stderr[-2000:]
    info: dict[str, object] = json.loads(result.stdout)
    assert info["status"] == "Completed"
    return info


@pytest.fixture
def local_images(tmp_path: Path, base_image: BaseImage) -> Workspace:
    """A workspace with no image registry (images stay in this machine's engine) and the test
    base as its default base image, with ``py`` (no base image of its own)."""
    ws = Workspace.create(tmp_path / "local-images", base_image=base_image.local_ref)
    _register(ws, tmp_path / "cache", {"name": "py", "python": {"version": "3.11"}})
    return ws


def _register(ws: Workspace, cache: Path, definition: dict[str, object]) -> None:
    path = ws.path / f"{definition['name']}.yml"
    path.write_text(yaml.safe_dump(definition))
    result = kiln_cli(ws, cache, "env", "register", "-f", str(path))
    assert result.returncode == 0, result.stderr


def test_a_warm_container_run_imports_nothing_heavy_and_runs_the_same_image(
    image_project: Workspace, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    cold, cold_modules = _submit(image_project, cache)
    first = _completed(cold)
    assert _heavy(cold_modules)  # the full path: it builds or pulls the image
    warm, modules = _submit(image_project, cache)
    second = _completed(warm)
    assert _heavy(modules) == []
    assert second["image"] == first["image"] and second["environment"] == first["environment"]
    assert second["metrics"] == {"answer": 42}
    log = kiln_cli(image_project, cache, "run", "logs", str(second["id"])).stdout
    assert "/opt/kiln/env/bin/python" in log and "readying" not in log


def test_a_removed_image_falls_back_to_the_full_path_which_builds_it_again(
    local_images: Workspace, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    first = _completed(_submit(local_images, cache)[0])
    digest = first["image"]["digest"]  # type: ignore[index]
    removed = subprocess.run(
        ["podman", "rmi", "--force", f"localhost/kiln/env@{digest}"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert removed.returncode == 0, removed.stderr
    again = _completed(_submit(local_images, cache)[0])
    log = kiln_cli(local_images, cache, "run", "logs", str(again["id"])).stdout
    assert "podman could not start the container as recorded" in log
    assert "is no longer on this machine: readying the environment again" in log
    assert again["image"] == first["image"]  # the same lock on the same base: the same digest
    # Built again, it is warm again.
    third, modules = _submit(local_images, cache)
    assert _completed(third)["image"] == first["image"] and _heavy(modules) == []


def test_another_definition_or_default_base_never_finds_the_old_image(
    local_images: Workspace, tmp_path: Path, base_image: BaseImage, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    first = _completed(_submit(local_images, cache)[0])
    monkeypatch.delenv("KILN_BASE_IMAGE", raising=False)
    found = held_if_warm(local_images, "py", cache=Cache(cache), in_image=True)
    assert found is not None and found.build_hash == first["environment"]["build_hash"]  # type: ignore[index]
    found.release()
    # Another default base (the same image by another name: another build hash).
    monkeypatch.setenv("KILN_BASE_IMAGE", base_image.registry_ref)
    assert held_if_warm(local_images, "py", cache=Cache(cache), in_image=True) is None
    monkeypatch.delenv("KILN_BASE_IMAGE")
    # Only variables changed: the same build, so the same image, with the new variables.
    _register(
        local_images,
        cache,
        {"name": "py", "python": {"version": "3.11"}, "environment_variables": {"A": "1"}},
    )
    found = held_if_warm(local_images, "py", cache=Cache(cache), in_image=True)
    assert found is not None and found.version == "2" and found.variables == {"A": "1"}
    found.release()
    # Another package set: a build of its own, which is not here; the full path builds it.
    _register(
        local_images,
        cache,
        {"name": "py", "python": {"version": "3.11", "pip": {"packages": ["six==1.16.0"]}}},
    )
    assert held_if_warm(local_images, "py", cache=Cache(cache), in_image=True) is None
    result, modules = _submit(local_images, cache)
    assert _completed(result)["environment"] != first["environment"] and _heavy(modules)


def test_docker_run_settings_reach_the_container(local_images: Workspace, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    docker = {"shm_size": "96m", "arguments": ["--hostname=kiln-shm-test"]}
    _register(local_images, cache, {"name": "shm", "python": {"version": "3.11"}, "docker": docker})
    for _ in range(2):  # the full path, then the warm one
        result, _modules = _submit(local_images, cache, env="shm")
        info = _completed(result)
        log = kiln_cli(local_images, cache, "run", "logs", str(info["id"])).stdout
        assert f"shm {96 * 1024 * 1024}" in log
    # Without a size: Azure ML's default, 2g (podman's own is 64m).
    result, _modules = _submit(local_images, cache)
    log = kiln_cli(local_images, cache, "run", "logs", str(_completed(result)["id"])).stdout
    assert f"shm {2 * 1024**3}" in log


@pytest.mark.parametrize(
    ("argument", "says"),
    [
        ("--rm", "--rm is Kiln's to set (Kiln removes the container itself)"),
        ("--env=TOKEN=x", "--env is Kiln's to set (set variables in `environment_variables`)"),
        ("--volume=/tmp:/kiln/run", "/kiln is where Kiln mounts the run"),
        ("/bin/sh", "each item must be one option starting with '-'"),
    ],
)
def test_docker_arguments_kiln_cannot_take_are_refused_before_anything_is_recorded(
    local_images: Workspace, tmp_path: Path, argument: str, says: str
) -> None:
    cache = tmp_path / "cache"
    docker = {"arguments": ["--ipc=private", argument]}
    _register(
        local_images, cache, {"name": "args", "python": {"version": "3.11"}, "docker": docker}
    )
    result, _modules = _submit(local_images, cache, env="args")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    message = [line for line in lines if "|" not in line]
    assert len(message) == 1
    assert f"`docker.arguments[1]` {argument!r}: {says}" in message[0]
    store = RunStore(local_images)
    assert store.find() == []
    store.close()
