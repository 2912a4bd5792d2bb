"""Environments built into OCI images with real podman and skopeo, cached in a real registry
(Debian's docker-registry on 127.0.0.1), on a real Debian base image."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kiln import catalog, images
from kiln.workspace import Workspace
from kilntesting.builds import PackageIndex, Recorder, says_waiting, wait_for
from kilntesting.cli import KILN, run_kiln
from kilntesting.images import BaseImage, EngineStore, ImageRegistry


def _workspace(tmp_path: Path, registry: ImageRegistry | None, name: str = "ws") -> Path:
    folder = tmp_path / name
    args = ["init", str(folder)] + (["--image-registry", registry.url] if registry else [])
    run_kiln(*args)
    return folder


def _env(folder: Path, cache: Path, **extra: str) -> dict[str, str]:
    return {"KILN_WORKSPACE": str(folder), "KILN_CACHE_DIR": str(cache), **extra}


def _register(folder: Path, env: dict[str, str], definition: dict[str, Any]) -> None:
    path = folder / f"{definition['name']}.yml"
    path.write_text(yaml.safe_dump(definition))
    run_kiln("env", "register", "-f", str(path), env=env)


def _definition(base: str, index: PackageIndex, **extra: Any) -> dict[str, Any]:
    index.publish("kilnpkg", "1.0", body="VALUE = 'one'\n")
    return {
        "name": "imaged",
        "python": {"pip": {"packages": ["kilnpkg==1.0"], "index_url": index.url}},
        "docker": {"base_image": base},
        "environment_variables": {"GREETING": "hello"},
        **extra,
    }


def _build(env: dict[str, str], *extra: str) -> dict[str, Any]:
    return json.loads(run_kiln("env", "build", "imaged", "--json", *extra, env=env).stdout)


def _in_image(image: str, code: str, store: EngineStore | None = None) -> str:
    result = subprocess.run(
        ["podman", "run", "--rm", "--pull=never", image, "python", "-c", code],
        capture_output=True, text=True, timeout=120, env=store.environ() if store else None,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_a_definition_with_a_base_image_builds_an_image_of_its_lock(
    tmp_path: Path,
    image_registry: ImageRegistry,
    base_image: BaseImage,
    package_index: PackageIndex,
) -> None:
    folder = _workspace(tmp_path, image_registry)
    env = _env(folder, tmp_path / "cache")
    _register(folder, env, _definition(base_image.registry_ref, package_index))

    result = _build(env)

    assert result["builder"] == "image" and result["image"]["action"] == "built"
    image = result["image"]["reference"]
    code = "import kilnpkg, os, sys; print(kilnpkg.VALUE, os.environ.get('GREETING'), sys.executable, sys.version.split()[0])"
    # The definition's variables are not baked in: the build hash leaves them out.
    assert _in_image(image, code).split() == [
        "one", "None", "/opt/kiln/env/bin/python", base_image.python_version
    ]  # fmt: skip
    # Pushed under its key, and the lock pins the base image's digest.
    tag = result["image"]["remote"].rsplit(":", 1)[1]
    assert image_registry.manifest_status("kiln/env", tag) == 200
    lock = run_kiln("env", "lock", "imaged", "--format", "pylock", env=env).stdout
    assert f'base-digest = "{base_image.digest}"' in lock


def test_the_same_lock_on_the_same_base_gives_the_same_image_digest(
    tmp_path: Path, base_image: BaseImage, package_index: PackageIndex
) -> None:
    """Two fresh caches, no registry: built twice from nothing, byte for byte the same."""
    folder = _workspace(tmp_path, None)
    first_env = _env(folder, tmp_path / "cache-1")
    _register(folder, first_env, _definition(base_image.local_ref, package_index))
    first = _build(first_env)
    subprocess.run(["podman", "rmi", first["image"]["reference"]], check=True, capture_output=True)

    second = _build(_env(folder, tmp_path / "cache-2"))

    assert second["image"]["action"] == "built"
    assert second["image"]["digest"] == first["image"]["digest"]


def _two_machines(
    tmp_path: Path,
    registry: ImageRegistry,
    base: BaseImage,
    index: PackageIndex,
    store: EngineStore,
) -> tuple[Path, dict[str, str], dict[str, str]]:
    """A workspace with ``imaged`` registered, and the environments of two machines using
    it: the second has an empty Kiln cache and an empty engine store."""
    folder = _workspace(tmp_path, registry)
    first = _env(folder, tmp_path / "cache-1")
    _register(folder, first, _definition(base.registry_ref, index))
    return folder, first, _env(folder, tmp_path / "cache-2", **store.env)


def test_a_second_machine_pulls_instead_of_building(
    tmp_path: Path,
    image_registry: ImageRegistry,
    base_image: BaseImage,
    package_index: PackageIndex,
    engine_store: EngineStore,
) -> None:
    _, first, second = _two_machines(
        tmp_path, image_registry, base_image, package_index, engine_store
    )
    built = _build(first)

    pulled = json.loads(run_kiln("image", "build", "imaged", "--json", env=second).stdout)

    assert pulled["action"] == "pulled"
    assert pulled["digest"] == built["image"]["digest"]
    logs = run_kiln("env", "logs", "imaged", env=second).stdout
    assert "==> pull" in logs and "==> install" not in logs
    assert "==> pull base" not in logs  # the finished image holds the base: it is not fetched alone
    assert _in_image(pulled["image"], "import kilnpkg; print(kilnpkg.VALUE)", engine_store) == "one"


def test_two_machines_asking_at_once_build_once_and_the_second_pulls(
    tmp_path: Path,
    image_registry: ImageRegistry,
    base_image: BaseImage,
    package_index: PackageIndex,
    engine_store: EngineStore,
) -> None:
    folder, first_env, second_env = _two_machines(
        tmp_path, image_registry, base_image, package_index, engine_store
    )
    package_index.delay = (
        600.0  # held until the second waits (a loaded machine may take a minute to get there)
    )
    command = [*KILN, "env", "build", "imaged", "--json"]
    held = {"UV_HTTP_TIMEOUT": "900"}  # uv waits out the held index
    first = subprocess.Popen(command, env={**os.environ, **first_env, **held}, **_PIPES)
    ws = Workspace(folder)
    wait_for(lambda: _leases(ws), "the first build to take its lease", timeout=120)
    second = subprocess.Popen(command, env={**os.environ, **second_env}, **_PIPES)
    wait_for(lambda: says_waiting(tmp_path / "cache-2"), "the second build to wait", 300)
    package_index.delay = 0.0
    (built, _), (pulled, waited) = (_finished(p) for p in (first, second))

    assert built["image"]["action"] == "built" and pulled["image"]["action"] == "pulled"
    assert pulled["image"]["digest"] == built["image"]["digest"]
    assert f"pid {first.pid}, which is building imaged:1" in waited
    logs = run_kiln("env", "logs", "imaged", env=second_env).stdout
    assert "==> pull" in logs and "==> resolve" not in logs and "==> install" not in logs
    assert _leases(ws) == []
    ws.close()


_PIPES: dict[str, Any] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}


def _leases(ws: Workspace) -> list[Any]:
    from sqlalchemy import select

    from kiln.registry.schema import build_leases

    with ws.engine.connect() as connection:
        return list(connection.execute(select(build_leases)))


def _finished(process: subprocess.Popen[str]) -> tuple[dict[str, Any], str]:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    return json.loads(out), err


def test_a_registry_that_does_not_answer_is_an_error_and_nothing_is_built(
    tmp_path: Path, base_image: BaseImage, package_index: PackageIndex
) -> None:
    folder = tmp_path / "ws"
    run_kiln("init", str(folder), "--image-registry", "http://127.0.0.1:9")
    env = _env(folder, tmp_path / "cache")
    _register(folder, env, _definition(base_image.local_ref, package_index))

    result = run_kiln("env", "build", "imaged", env=env, check=False)

    assert result.returncode == 6
    assert "the image registry http://127.0.0.1:9 did not answer" in result.stderr
    assert not (tmp_path / "cache" / "envs").exists() or not any(
        (tmp_path / "cache" / "envs").iterdir()
    )


@pytest.mark.parametrize(
    ("docker", "python", "expected"),
    [
        ({"base_image": "{host}/kiln-test/no-such-image:1"}, {}, "base image {host}/kiln-test/no-such-image:1 cannot be pulled"),
        ({"base_image": "{local}"}, {"version": "3.12"}, "`python.version` 3.12 does not match base image"),
        ({"dockerfile": "FROM scratch"}, {}, "has no Python that starts"),
        ({"base_image": "{local}"}, {"conda": {"packages": ["numpy"]}}, "an image with conda packages cannot be built"),
    ],
)  # fmt: skip
def test_what_cannot_be_built_as_written_fails_in_one_line(
    tmp_path: Path,
    image_registry: ImageRegistry,
    base_image: BaseImage,
    docker: dict[str, str],
    python: dict[str, str],
    expected: str,
) -> None:
    names = {"host": image_registry.host, "local": base_image.local_ref}
    folder = _workspace(tmp_path, image_registry)
    env = _env(folder, tmp_path / "cache")
    docker = {k: v.format(**names) for k, v in docker.items()}
    _register(folder, env, {"name": "imaged", "python": python, "docker": docker})

    result = run_kiln("env", "build", "imaged", env=env, check=False)

    assert result.returncode != 0
    assert expected.format(**names) in result.stderr
    assert "Traceback" not in result.stderr
    shown = run_kiln("env", "show", "imaged", "--build", "--json", env=env).stdout
    assert json.loads(shown)["build"]["state"] == "not built"


def test_host_only_builds_the_python_part_on_this_machine(
    tmp_path: Path, base_image: BaseImage, package_index: PackageIndex
) -> None:
    folder = _workspace(tmp_path, None)
    env = _env(folder, tmp_path / "cache")
    _register(folder, env, _definition(base_image.local_ref, package_index))

    result = _build(env, "--host-only")

    assert result["builder"] == "venv" and "image" not in result
    assert Path(result["interpreter"]).is_file()


def test_a_private_index_password_enters_no_layer_and_no_config(
    tmp_path: Path, base_image: BaseImage, package_index: PackageIndex
) -> None:
    secret = "s3cret-index-token-value"
    package_index.credentials = ("kiln", secret)
    folder = _workspace(tmp_path, None)
    env = _env(folder, tmp_path / "cache", INDEX_TOKEN=secret)
    definition = _definition(base_image.local_ref, package_index)
    definition["python"]["pip"]["index_url"] = package_index.url.replace(
        "http://", "http://kiln:${INDEX_TOKEN}@"
    )
    _register(folder, env, definition)

    result = _build(env)

    layout = tmp_path / "layout"
    subprocess.run(
        ["skopeo", "copy", "-q", f"containers-storage:{result['image']['reference']}", f"oci:{layout}:x"],
        check=True, capture_output=True,
    )  # fmt: skip
    import gzip

    for blob in (layout / "blobs" / "sha256").iterdir():
        data = blob.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        assert secret.encode() not in data, f"the secret is in blob {blob.name}"
    assert secret not in run_kiln("env", "logs", "imaged", env=env).stdout
    history = subprocess.run(
        ["podman", "history", "--no-trunc", result["image"]["reference"]],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert secret not in history


def test_a_patched_base_is_listed_as_outdated_and_refresh_base_moves_onto_it(
    tmp_path: Path,
    image_registry: ImageRegistry,
    base_image: BaseImage,
    package_index: PackageIndex,
) -> None:
    tag = f"{image_registry.host}/kiln-test/patched:1"
    subprocess.run(
        ["skopeo", "copy", "-q", "--dest-tls-verify=false", f"containers-storage:{base_image.local_ref}", f"docker://{tag}"],
        check=True, capture_output=True,
    )  # fmt: skip
    folder = _workspace(tmp_path, image_registry)
    env = _env(folder, tmp_path / "cache")
    _register(folder, env, _definition(tag, package_index))
    first = _build(env)
    old_digest = image_registry.manifest("kiln-test/patched", "1").digest
    assert json.loads(run_kiln("image", "outdated", "--json", env=env).stdout) == []
    # The base is patched: a new image under the same tag.
    patch = tmp_path / "patch"
    patch.mkdir()
    (patch / "Containerfile").write_text(
        f"FROM {base_image.local_ref}\nRUN echo patched > /etc/kiln-patch\n"
    )
    subprocess.run(
        ["podman", "build", "-q", "-t", "kiln-test/patched-local", str(patch)],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        ["skopeo", "copy", "-q", "--dest-tls-verify=false", "containers-storage:localhost/kiln-test/patched-local:latest", f"docker://{tag}"],
        check=True, capture_output=True,
    )  # fmt: skip
    new_digest = image_registry.manifest("kiln-test/patched", "1").digest

    outdated = json.loads(run_kiln("image", "outdated", "--json", env=env).stdout)
    assert [(o["environment"], o["pinned_digest"], o["current_digest"]) for o in outdated] == [
        ("imaged:1", old_digest, new_digest)
    ]
    refreshed = _build(env, "--refresh-base")

    assert refreshed["lock_generation"] == first["lock_generation"] + 1
    assert refreshed["lock_changes"]["base_image"] == {"from": old_digest, "to": new_digest}
    assert refreshed["image"]["digest"] != first["image"]["digest"]
    assert (
        _in_image(refreshed["image"]["reference"], "print(open('/etc/kiln-patch').read().strip())")
        == "patched"
    )
    assert json.loads(run_kiln("image", "outdated", "--json", env=env).stdout) == []


def test_image_show_dockerfile_list_and_gc(
    tmp_path: Path,
    image_registry: ImageRegistry,
    base_image: BaseImage,
    package_index: PackageIndex,
) -> None:
    folder = _workspace(tmp_path, image_registry)
    env = _env(folder, tmp_path / "cache")
    _register(folder, env, _definition(base_image.registry_ref, package_index))
    built = _build(env)["image"]

    shown = json.loads(run_kiln("image", "show", "imaged", "--json", env=env).stdout)
    listed = json.loads(run_kiln("image", "list", "--json", env=env).stdout)
    dockerfile = run_kiln("image", "dockerfile", "imaged", env=env).stdout

    assert shown["digest"] == built["digest"] and shown["exists_in_registry"] is True
    assert shown["base"]["digest"] == base_image.digest and shown["layers"] >= 2
    assert [i["digest"] for i in listed] == [built["digest"]]
    assert f"FROM {base_image.registry_ref.rsplit(':', 1)[0]}@{base_image.digest}" in dockerfile
    assert 'podman run -e GREETING="hello"' in dockerfile and "ENV GREETING" not in dockerfile

    run_kiln("cache", "gc", "--max-size", "0", env=env)

    gone = subprocess.run(["podman", "image", "exists", built["reference"]], check=False)
    assert gone.returncode == 1
    assert json.loads(run_kiln("image", "list", "--json", env=env).stdout) == []


def test_a_dockerfile_runs_first_then_the_lock_goes_on_top(
    tmp_path: Path, base_image: BaseImage, package_index: PackageIndex
) -> None:
    folder = _workspace(tmp_path, None)
    env = _env(folder, tmp_path / "cache")
    definition = _definition("unused", package_index)
    definition["docker"] = {
        "dockerfile": f"FROM {base_image.local_ref}\nRUN echo from-the-dockerfile > /opt/marker\n"
    }
    _register(folder, env, definition)

    result = _build(env)

    assert result["builder"] == "image"
    code = "import kilnpkg; print(kilnpkg.VALUE, open('/opt/marker').read().strip())"
    assert _in_image(result["image"]["reference"], code) == "one from-the-dockerfile"
    assert "from-the-dockerfile" in run_kiln("env", "logs", "imaged", env=env).stdout


def test_an_image_build_shows_its_steps_in_order_and_what_uv_does_in_the_container(
    tmp_path: Path, base_image: BaseImage, package_index: PackageIndex, cache_dir: Path
) -> None:
    folder = _workspace(tmp_path, None)
    definition = _definition("unused", package_index)
    definition["docker"] = {"dockerfile": f"FROM {base_image.local_ref}\nRUN true\n"}
    _register(folder, _env(folder, cache_dir), definition)
    workspace = Workspace(folder)
    shown = Recorder()

    try:
        images.build(workspace, catalog.get(workspace, "imaged"), reporter=shown)
    finally:
        workspace.close()

    assert shown.phases == ["dockerfile", "resolve", "base", "install", "layer", "verify"]
    assert "2/2: RUN true" in shown.details  # podman's step, then uv's lines in the container
    assert "installed kilnpkg 1.0 (1 of 1)" in shown.details


def test_a_user_managed_build_context_is_built_as_it_is_and_its_packages_recorded(
    tmp_path: Path, base_image: BaseImage, package_index: PackageIndex
) -> None:
    wheel = package_index.publish("kilnpkg", "2.0", body="VALUE = 'two'\n")
    folder = _workspace(tmp_path, None)
    context = folder / "context"
    context.mkdir()
    (context / wheel.name).write_bytes(wheel.read_bytes())
    (context / "Containerfile").write_text(
        f"FROM {base_image.local_ref}\nCOPY {wheel.name} /tmp/\n"
        f"RUN python3 -m venv --without-pip /opt/venv && cd /tmp && python3 -c \"import zipfile; zipfile.ZipFile('{wheel.name}').extractall('/opt/venv/lib/python3.11/site-packages')\"\n"
        "ENV PATH=/opt/venv/bin:$PATH\n"
    )
    env = _env(folder, tmp_path / "cache")
    (folder / "byoc.yml").write_text(
        yaml.safe_dump(
            {
                "name": "byoc",
                "python": {"user_managed": True},
                "docker": {"build_context": "context", "dockerfile_path": "Containerfile"},
            }
        )
    )
    run_kiln("env", "register", "-f", str(folder / "byoc.yml"), env=env)

    result = json.loads(run_kiln("env", "build", "byoc", "--json", env=env).stdout)

    assert result["builder"] == "user-image" and result["interpreter"] == "/opt/venv/bin/python3"
    lock = run_kiln("env", "lock", "byoc", env=env).stdout
    assert "kilnpkg==2.0" in lock
    labels = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{json .Labels}}", result["image"]["reference"]],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert json.loads(labels)["io.kiln.environment"] == "byoc:1"


def test_a_failing_dockerfile_step_fails_the_build_naming_the_step(
    tmp_path: Path, base_image: BaseImage
) -> None:
    folder = _workspace(tmp_path, None)
    env = _env(folder, tmp_path / "cache")
    step = "RUN echo about to fail && exit 3"
    _register(
        folder,
        env,
        {"name": "imaged", "docker": {"dockerfile": f"FROM {base_image.local_ref}\n{step}\n"}},
    )

    result = run_kiln("env", "build", "imaged", env=env, check=False)

    assert result.returncode == 6
    assert "building the definition's Dockerfile failed" in result.stderr
    assert "exit status 3" in result.stderr and "about to fail" in result.stderr


def test_a_build_killed_midway_leaves_nothing_that_looks_built(
    tmp_path: Path,
    image_registry: ImageRegistry,
    base_image: BaseImage,
    package_index: PackageIndex,
) -> None:
    import os
    import signal
    import sys
    import time

    folder = _workspace(tmp_path, image_registry)
    cache = tmp_path / "cache"
    env = _env(folder, cache)
    _register(folder, env, _definition(base_image.registry_ref, package_index))
    build = subprocess.Popen(
        [sys.executable, "-m", "kiln", "env", "build", "imaged"],
        env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    # Killed while uv installs inside the base image (the venv is being filled).
    while not list((cache / "tmp").glob("*/env/bin")) and time.monotonic() < deadline:
        assert build.poll() is None, "the build ended before it could be killed"
        time.sleep(0.02)
    build.send_signal(signal.SIGKILL)
    build.wait()

    assert not list((cache / "envs").glob("*/.kiln-ready"))
    shown = json.loads(run_kiln("env", "show", "imaged", "--build", "--json", env=env).stdout)
    assert shown["build"]["state"] == "not built"
    result = _build(env)
    assert result["image"]["action"] == "built"
    tag = result["image"]["remote"].rsplit(":", 1)[1]
    assert image_registry.manifest_status("kiln/env", tag) == 200


def test_push_sends_an_image_built_before_the_registry_and_no_cache_builds_anew(
    tmp_path: Path,
    image_registry: ImageRegistry,
    base_image: BaseImage,
    package_index: PackageIndex,
) -> None:
    folder = _workspace(tmp_path, None)
    env = _env(folder, tmp_path / "cache")
    _register(folder, env, _definition(base_image.local_ref, package_index))
    first = json.loads(run_kiln("image", "build", "imaged", "--json", env=env).stdout)
    assert first["remote"] is None
    with_registry = {**env, "KILN_IMAGE_REGISTRY": image_registry.url}

    pushed = json.loads(
        run_kiln("image", "build", "imaged", "--push", "--json", env=with_registry).stdout
    )
    again = json.loads(
        run_kiln("image", "build", "imaged", "--no-cache", "--json", env=with_registry).stdout
    )

    assert pushed["action"] == "present" and pushed["remote"]
    assert image_registry.manifest_status("kiln/env", pushed["remote"].rsplit(":", 1)[1]) == 200
    assert again["action"] == "built"  # not pulled, though the registry has it
    assert again["digest"] == first["digest"]
    refused = run_kiln("image", "build", "imaged", "--push", env=env, check=False)
    assert refused.returncode == 2 and "has no image registry" in refused.stderr


def test_a_one_package_change_changes_only_that_package_s_layer_and_the_small_one(
    tmp_path: Path, base_image: BaseImage, package_index: PackageIndex
) -> None:
    package_index.publish("otherpkg", "1.0", body="X = 1\n" * 5000)
    folder = _workspace(tmp_path, None)
    env = _env(folder, tmp_path / "cache")
    definition = _definition(base_image.local_ref, package_index)
    definition["python"]["pip"]["packages"].append("otherpkg==1.0")
    _register(folder, env, definition)
    first = _build(env)["image"]["reference"]
    package_index.publish("kilnpkg", "1.1", body="VALUE = 'changed'\n")
    definition["python"]["pip"]["packages"][0] = "kilnpkg==1.1"
    _register(folder, env, definition)

    second = _build(env)["image"]["reference"]

    def layers(image: str) -> list[str]:
        return json.loads(subprocess.run(
            ["podman", "image", "inspect", "--format", "{{json .RootFS.Layers}}", image],
            capture_output=True, text=True, check=True,
        ).stdout)  # fmt: skip

    before, after = layers(first), layers(second)
    assert len(after) == len(before) == 4  # the base, the environment's own, two distributions
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert changed == [
        1,
        2,
    ]  # the environment's own files (its lock) and kilnpkg; otherpkg is shared
    assert (
        _in_image(second, "import kilnpkg, otherpkg; print(kilnpkg.VALUE, otherpkg.X)")
        == "changed 1"
    )
