"""The SDK face of images, named as in azureml-core: ``env.build(ws)`` of a definition with a
base image builds its image, ``env.build_local(ws, useDocker=...)`` builds an image or on this
machine, ``env.get_image_details(ws)`` describes the image in Azure's shape. Real podman,
skopeo, registry and base image."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiln import CondaDependencies, Environment, Workspace
from kiln.errors import NotFound, UsageError
from kilntesting.builds import PackageIndex
from kilntesting.cli import run_kiln
from kilntesting.images import BaseImage, ImageRegistry


def _environment(index: PackageIndex, base: str | None) -> Environment:
    index.publish("kilnpkg", "1.0", body="VALUE = 'one'\n")
    env = Environment("sdkimg")
    env.python.conda_dependencies = CondaDependencies.create(pip_packages=["kilnpkg==1.0"])
    env.python.conda_dependencies.set_pip_index_url(index.url)
    if base:
        env.docker.base_image = base
    return env


def _in_image(image: str) -> str:
    code = "import kilnpkg, sys; print(kilnpkg.VALUE, sys.executable)"
    result = subprocess.run(
        ["podman", "run", "--rm", "--pull=never", image, "python", "-c", code],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture
def registry_workspace(tmp_path: Path, image_registry: ImageRegistry) -> Iterator[Workspace]:
    ws = Workspace.create(tmp_path / "ws", image_registry=image_registry.url)
    yield ws
    ws.close()


def test_build_of_a_definition_with_a_base_image_builds_its_image(
    registry_workspace: Workspace,
    image_registry: ImageRegistry,
    base_image: BaseImage,
    package_index: PackageIndex,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = _environment(package_index, base_image.registry_ref)

    build = env.build(registry_workspace).wait_for_completion(show_output=True)

    assert build.status == "Succeeded" and build.image_details is not None
    image = build.image_details
    assert image["action"] == "built" and image["environment"] == "sdkimg:1"
    assert f"Built {image['image']} (sdkimg:1): {image['digest']}" in capsys.readouterr().out
    assert _in_image(image["image"]) == "one /opt/kiln/env/bin/python"
    assert (
        image["remote"]
        and image_registry.manifest_status("kiln/env", image["remote"].rsplit(":", 1)[1]) == 200
    )
    assert "==> push" in build.log
    # Asked again: the image is there, nothing is built.
    again = Environment.get(registry_workspace, "sdkimg").build(registry_workspace)
    assert again.wait_for_completion().image_details == {**image, "action": "present"}


def test_get_image_details_has_azures_shape_and_image_shows_values(
    registry_workspace: Workspace,
    image_registry: ImageRegistry,
    base_image: BaseImage,
    package_index: PackageIndex,
    cache_dir: Path,
) -> None:
    env = _environment(package_index, base_image.registry_ref).register(registry_workspace)
    with pytest.raises(NotFound, match=r"sdkimg:1 has no image on this machine; run `kiln image build sdkimg:1`"):  # fmt: skip
        env.get_image_details(registry_workspace)
    env.build(registry_workspace).wait_for_completion()

    details = env.get_image_details(registry_workspace)

    cli_env = {"KILN_WORKSPACE": str(registry_workspace.path), "KILN_CACHE_DIR": str(cache_dir)}
    shown = json.loads(run_kiln("image", "show", "sdkimg", "--json", env=cli_env).stdout)
    azure_keys = {"dockerImage", "imageExistsInRegistry", "ingredients", "pythonEnvironment"}
    assert {k: v for k, v in details.items() if k not in azure_keys} == shown
    docker_image = details["dockerImage"]
    assert docker_image["registry"] == {
        "address": image_registry.host, "username": None, "password": None
    }  # fmt: skip
    assert f"{docker_image['registry']['address']}/{docker_image['name']}" == shown["remote"]
    assert docker_image["name"].startswith("kiln/env:")
    assert details["imageExistsInRegistry"] is True and shown["exists_in_registry"] is True
    assert details["ingredients"]["dockerfile"] == shown["dockerfile"]
    assert details["ingredients"]["dockerfile"].count(f"@{base_image.digest}") == 1
    assert details["pythonEnvironment"]["interpreterPath"] == shown["interpreter"]


def test_build_local_builds_on_this_machine_or_an_image_on_the_default_base(
    tmp_path: Path, base_image: BaseImage, package_index: PackageIndex
) -> None:
    ws = Workspace.create(tmp_path / "ws", base_image=base_image.local_ref)  # no registry
    env = _environment(package_index, None)

    host = env.build_local(ws)  # azureml-core's default: useDocker=False

    assert host.status == "Succeeded" and host.image_details is None
    assert host.interpreter is not None and host.interpreter.is_file()
    assert not str(host.interpreter).startswith("/opt/kiln")

    imaged = env.build_local(ws, useDocker=True, show_output=False)
    also = env.build_local(ws, use_docker=True, show_output=False)  # the snake_case

    assert imaged.image_details is not None and imaged.image_details["action"] == "built"
    assert imaged.image_details["base"]["reference"] == base_image.local_ref
    assert imaged.image_details["registry"] is None
    assert _in_image(imaged.image_details["image"]) == "one /opt/kiln/env/bin/python"
    assert also.image_details == {**imaged.image_details, "action": "present"}
    details = env.get_image_details(ws)
    assert details["dockerImage"] == {
        "name": imaged.image_details["image"],
        "registry": {"address": None, "username": None, "password": None},
    }
    assert details["imageExistsInRegistry"] is False
    ws.close()


def test_build_local_push_without_a_registry_names_how_to_set_one(
    tmp_path: Path, base_image: BaseImage, package_index: PackageIndex
) -> None:
    ws = Workspace.create(tmp_path / "ws", base_image=base_image.local_ref)
    env = _environment(package_index, None)

    for push in ({"pushImageToWorkspaceAcr": True}, {"push_image_to_workspace_registry": True}):
        with pytest.raises(UsageError, match=r"no image registry to push to: set one with `kiln init --image-registry URL` or KILN_IMAGE_REGISTRY"):  # fmt: skip
            env.build_local(ws, useDocker=True, **push)
    with pytest.raises(UsageError, match="useDocker=True and use_docker=False disagree"):
        env.build_local(ws, useDocker=True, use_docker=False)
    with pytest.raises(UsageError, match="Kiln builds Linux environments"):
        env.build_local(ws, platform="Windows")
    assert not (tmp_path / "cache" / "envs").exists()  # nothing was built
    ws.close()


def test_build_local_pushes_an_image_built_before_the_registry_was_set(
    tmp_path: Path,
    image_registry: ImageRegistry,
    base_image: BaseImage,
    package_index: PackageIndex,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws = Workspace.create(tmp_path / "ws")
    env = _environment(package_index, base_image.local_ref)
    first = env.build(ws).wait_for_completion()
    assert first.image_details is not None and first.image_details["remote"] is None
    monkeypatch.setenv("KILN_IMAGE_REGISTRY", image_registry.url)

    pushed = env.build_local(ws, useDocker=True, pushImageToWorkspaceAcr=True)

    assert pushed.image_details is not None and pushed.image_details["action"] == "pushed"
    tag = pushed.image_details["remote"].rsplit(":", 1)[1]
    assert image_registry.manifest_status("kiln/env", tag) == 200
    assert env.get_image_details(ws)["imageExistsInRegistry"] is True
    ws.close()
