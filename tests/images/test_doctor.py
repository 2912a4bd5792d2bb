"""``kiln doctor``: real podman, skopeo, buildah, uv and a real registry; each failure is one
line naming what is wrong and the fix, and the exit code says whether all passed."""

from __future__ import annotations

import json
import resource
import sys
from pathlib import Path
from typing import Any

import pytest

from kiln.doctor import PODMAN_DEFAULT_NOFILE
from kilntesting.cli import run_kiln
from kilntesting.images import BaseImage, ContainerEngine, EngineStore, ImageRegistry

NO_ULIMITS = '[engine]\nruntime = "runc"\n'  # containers.conf without default_ulimits
# This machine kind's hard limit is below podman's default, which is what containers.conf's
# default_ulimits is for (machine.md).
LOW_HARD_LIMIT = resource.getrlimit(resource.RLIMIT_NOFILE)[1] < PODMAN_DEFAULT_NOFILE


def _workspace(tmp_path: Path, registry: str | None = None) -> dict[str, str]:
    folder = tmp_path / "ws"
    run_kiln("init", str(folder), *(["--image-registry", registry] if registry else []))
    return {"KILN_WORKSPACE": str(folder)}


def _checks(env: dict[str, str]) -> tuple[int, dict[str, dict[str, Any]]]:
    result = run_kiln("doctor", "--json", env=env, check=False)
    return result.returncode, {check["name"]: check for check in json.loads(result.stdout)}


def _failures(env: dict[str, str]) -> tuple[int, list[str]]:
    result = run_kiln("doctor", env=env, check=False)
    return result.returncode, [
        line for line in result.stdout.splitlines() if line.startswith("FAIL")
    ]


def test_a_workspace_with_a_reachable_registry_passes(
    tmp_path: Path, container_engine: ContainerEngine, image_registry: ImageRegistry
) -> None:
    env = _workspace(tmp_path, image_registry.url)

    code, checks = _checks(env)

    assert code == 0, checks
    assert list(checks) == [
        "podman", "skopeo", "buildah", "podman info", "container ulimits", "uv", "workspace",
        "image registry",
    ]  # fmt: skip
    assert all(check["ok"] and check["fix"] is None for check in checks.values())
    assert checks["podman info"]["detail"] == f"OCI runtime {container_engine.runtime}"
    assert checks["podman"]["detail"].startswith("podman version ")
    assert checks["image registry"]["detail"] == f"{image_registry.url} answers GET /v2/ (200)"
    assert checks["workspace"]["detail"] == str(tmp_path / "ws")


def test_an_unreachable_registry_fails_naming_it_and_the_fix(
    tmp_path: Path, container_engine: ContainerEngine
) -> None:
    env = _workspace(tmp_path, "http://127.0.0.1:9")

    code, failures = _failures(env)

    assert code == 1
    assert failures == [
        "FAIL  image registry: http://127.0.0.1:9 did not answer in 5 s (ConnectError); "
        "fix: start the registry, or set the right address with "
        "`kiln init --image-registry URL` or KILN_IMAGE_REGISTRY"
    ]


def test_a_path_without_podman_fails_naming_it_and_the_install_command(tmp_path: Path) -> None:
    only_python = tmp_path / "bin"
    only_python.mkdir()
    (only_python / "python").symlink_to(sys.executable)
    env = {**_workspace(tmp_path), "PATH": str(only_python)}

    code, failures = _failures(env)

    assert code == 1
    assert failures == [
        f"FAIL  {tool}: {tool} is not on PATH; fix: install it: `apt-get install podman buildah skopeo`"
        for tool in ("podman", "skopeo", "buildah")
    ]
    _, checks = _checks(env)
    assert "podman info" not in checks and checks["uv"]["ok"] and checks["workspace"]["ok"]


@pytest.mark.skipif(not LOW_HARD_LIMIT, reason="`ulimit -Hn` is as high as podman's default")
def test_containers_that_ask_for_more_than_the_hard_limit_fail_with_the_setting(
    tmp_path: Path, base_image: BaseImage
) -> None:
    """An image is in the store: a real container is started, and runc refuses it."""
    conf = tmp_path / "containers.conf"
    conf.write_text(NO_ULIMITS)
    env = {**_workspace(tmp_path), "CONTAINERS_CONF": str(conf)}

    code, checks = _checks(env)

    ulimits = checks["container ulimits"]
    assert code == 1 and not ulimits["ok"]
    assert "error setting rlimit" in ulimits["detail"]
    assert f'in {conf} set [containers] default_ulimits = ["nofile=' in ulimits["fix"]
    assert [name for name, check in checks.items() if not check["ok"]] == ["container ulimits"]


@pytest.mark.skipif(not LOW_HARD_LIMIT, reason="`ulimit -Hn` is as high as podman's default")
def test_with_no_image_in_the_store_the_settings_are_compared(
    tmp_path: Path, container_engine: ContainerEngine, engine_store: EngineStore
) -> None:
    conf = tmp_path / "containers.conf"
    conf.write_text(NO_ULIMITS)
    env = {**_workspace(tmp_path), **engine_store.env, "CONTAINERS_CONF": str(conf)}

    _, unset = _checks(env)
    conf.write_text('[containers]\ndefault_ulimits = ["nofile=64:64"]\n' + NO_ULIMITS)
    code, fitting = _checks(env)

    assert unset["container ulimits"]["detail"].startswith(
        "containers ask for more: default_ulimits (not set); `ulimit -Hn` "
    )
    assert code == 0 and fitting["container ulimits"]["detail"].startswith(
        "default_ulimits nofile=64:64; `ulimit -Hn` "
    )
