"""The container test infrastructure does what it says: the base image runs its recorded
Python, the session registry answers 200 and 404, a fresh engine store is empty and pulls from
the registry, and scripts/containers.sh configures the engine without clobbering a user's file."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from kilntesting.images import SCRIPT, BaseImage, EngineStore, ImageRegistry, run


def test_base_image_runs_its_recorded_python(base_image: BaseImage) -> None:
    script = "import sys; print(sys.version)"
    out = run("podman", "run", "--rm", base_image.local_ref, "python3", "-c", script)
    assert out.split()[0] == base_image.python_version


def test_base_image_tarball_is_trimmed(base_image: BaseImage) -> None:
    names = run("tar", "-tf", str(base_image.tarball)).splitlines()
    assert "./usr/bin/python3" in names
    trimmed = ("./usr/share/doc/", "./usr/share/man/", "./var/lib/apt/lists/", "./var/cache/apt/")
    assert [n for n in names if n.startswith(trimmed) and n not in trimmed] == []
    locales = {
        n.split("/")[4] for n in names if n.startswith("./usr/share/locale/") and n.count("/") > 4
    }
    assert locales <= {"C", "C.UTF-8", "C.utf8"}


def test_registry_answers_200_for_the_pushed_tag_and_404_for_others(
    image_registry: ImageRegistry, base_image: BaseImage
) -> None:
    assert base_image.registry_ref == f"{image_registry.host}/kiln-test/debian-python:bookworm"
    assert image_registry.manifest_status("kiln-test/debian-python", "bookworm") == 200
    assert image_registry.manifest_status("kiln-test/debian-python", "no-such-tag") == 404
    assert image_registry.manifest_status("kiln-test/no-such-repo", "bookworm") == 404
    assert base_image.digest.startswith("sha256:")


def test_registry_deletes_manifests(image_registry: ImageRegistry, base_image: BaseImage) -> None:
    scratch = f"docker://{image_registry.host}/kiln-test/scratch:doomed"
    run("skopeo", "copy", "--quiet", "--dest-tls-verify=false",
        f"docker://{base_image.registry_ref}", scratch, "--src-tls-verify=false")  # fmt: skip
    answer = image_registry.manifest("kiln-test/scratch", "doomed")
    assert answer.status == 200 and answer.digest == base_image.digest
    assert image_registry.delete_manifest("kiln-test/scratch", base_image.digest) == 202
    assert image_registry.manifest_status("kiln-test/scratch", "doomed") == 404
    assert image_registry.manifest_status("kiln-test/debian-python", "bookworm") == 200


def test_a_fresh_engine_store_is_empty_and_pulls_from_the_registry(
    engine_store: EngineStore, base_image: BaseImage
) -> None:
    env = engine_store.environ()
    assert run("podman", "images", "--quiet", env=env) == ""
    missing = subprocess.run(["podman", "image", "exists", base_image.local_ref], env=env)
    assert missing.returncode == 1
    run("podman", "pull", "--quiet", "--tls-verify=false", base_image.registry_ref, env=env)
    digest = run(
        "podman", "image", "inspect", "--format", "{{.Digest}}", base_image.registry_ref, env=env
    )
    assert digest.strip() == base_image.digest
    out = run("podman", "run", "--rm", base_image.registry_ref, "python3", "-V", env=env)
    assert out.strip() == f"Python {base_image.python_version}"
    assert str(engine_store.root) in run(
        "podman", "info", "--format", "{{.Store.GraphRoot}}", env=env
    )


def test_registries_conf_lets_tools_reach_the_registry_without_tls_flags(
    image_registry: ImageRegistry, base_image: BaseImage, tmp_path: Path
) -> None:
    repository = base_image.registry_ref.rsplit(":", 1)[0]
    list_tags = ["podman", "search", "--list-tags", repository]
    refused = subprocess.run(list_tags, capture_output=True, text=True)
    assert "HTTP response to HTTPS client" in refused.stderr
    env = {**os.environ, **image_registry.registries_conf(tmp_path)}
    assert "bookworm" in run(*list_tags, env=env)
    conf = env["CONTAINERS_REGISTRIES_CONF"]
    inspect = [
        "skopeo",
        "--registries-conf",
        conf,
        "inspect",
        f"docker://{base_image.registry_ref}",
    ]
    assert base_image.digest in run(*inspect)


def configure(etc: Path) -> None:
    env = {**os.environ, "KILN_CONTAINERS_ETC": str(etc)}
    run("bash", str(SCRIPT), "--config-only", env=env)


@pytest.mark.skipif(os.geteuid() != 0, reason="scripts/containers.sh configures only as root")
def test_containers_sh_writes_a_missing_containers_conf(tmp_path: Path) -> None:
    configure(tmp_path)
    conf = (tmp_path / "containers.conf").read_text()
    assert 'runtime = "runc"' in conf and "default_ulimits" in conf
    assert not (tmp_path / "containers.conf.d").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="scripts/containers.sh configures only as root")
def test_containers_sh_leaves_a_conf_that_has_both_settings(tmp_path: Path) -> None:
    mine = '[containers]\ndefault_ulimits = ["nofile=1024:1024"]\n[engine]\nruntime = "runc"\n'
    (tmp_path / "containers.conf").write_text(mine)
    configure(tmp_path)
    assert (tmp_path / "containers.conf").read_text() == mine
    assert not (tmp_path / "containers.conf.d").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="scripts/containers.sh configures only as root")
def test_containers_sh_adds_a_drop_in_beside_a_users_own_conf(tmp_path: Path) -> None:
    mine = '[engine]\nevents_logger = "file"\n'
    (tmp_path / "containers.conf").write_text(mine)
    configure(tmp_path)
    configure(tmp_path)  # idempotent: the same drop-in, nothing else
    assert (tmp_path / "containers.conf").read_text() == mine
    drop_ins = list((tmp_path / "containers.conf.d").iterdir())
    assert [p.name for p in drop_ins] == ["50-kiln-test.conf"]
    assert 'runtime = "runc"' in drop_ins[0].read_text()
