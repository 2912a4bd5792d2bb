"""A build context given as a git URL, registered through the real CLI against a real git
server (``git daemon`` on 127.0.0.1): the ref is pinned to a commit, a moved branch is a new
version, and bad input is one line that registers nothing. The image built from such a
context is in tests/images/test_git_context_images.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kilntesting.cli import run_kiln
from kilntesting.gitserver import GitServer, git, git_server

DOCKERFILE = "FROM localhost/kiln-test/base:bookworm\nRUN true\n"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[GitServer]:
    with git_server(tmp_path / "git") as server:
        yield server


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    run_kiln("init", str(tmp_path / "ws"))
    return {"KILN_WORKSPACE": str(tmp_path / "ws"), "KILN_CACHE_DIR": str(tmp_path / "cache")}


def _file(tmp_path: Path, docker: dict[str, Any], name: str = "gitctx") -> Path:
    path = tmp_path / f"{name}.yml"
    path.write_text(
        yaml.safe_dump({"name": name, "python": {"user_managed": True}, "docker": docker})
    )
    return path


def _show(env: dict[str, str], reference: str) -> dict[str, Any]:
    shown: dict[str, Any] = json.loads(run_kiln("env", "show", reference, "--json", env=env).stdout)
    return shown


def _versions(env: dict[str, str]) -> list[str]:
    listed = json.loads(run_kiln("env", "list", "--all-versions", "--json", env=env).stdout)
    return [f"{v['name']}:{v['version']}" for v in listed if not v["curated"]]


def test_a_git_context_is_pinned_to_its_commit_and_a_moved_branch_is_a_new_version(
    tmp_path: Path, served: GitServer, env: dict[str, str]
) -> None:
    work = served.repository("app")
    first = served.commit(work, {"Dockerfile": DOCKERFILE})
    url = served.url_of("app")
    source = _file(tmp_path, {"build_context": f"{url}#main"})

    run_kiln("env", "register", "-f", str(source), env=env)
    again = run_kiln("env", "register", "-f", str(source), env=env)
    second = served.commit(work, {"README": "moved on\n"})
    run_kiln("env", "register", "-f", str(source), env=env)

    assert "gitctx:1" in again.stdout + again.stderr  # unchanged branch: the same version
    one, two = _show(env, "gitctx:1"), _show(env, "gitctx:2")
    assert one["definition"]["docker"]["build_context_commit"] == first
    assert two["definition"]["docker"]["build_context_commit"] == second
    assert one["definition"]["docker"]["build_context"] == f"{url}#main"
    assert one["build_hash"] != two["build_hash"]
    text = run_kiln("env", "show", "gitctx:1", env=env).stdout
    assert f"{url}#main" in text and first in text
    diff = run_kiln("env", "diff", "gitctx:1", "gitctx:2", env=env).stdout
    assert f"docker.git_commit: {first} -> {second}" in diff


def test_a_subfolder_with_its_own_dockerfile_and_a_tag_resolve_to_the_tagged_commit(
    tmp_path: Path, served: GitServer, env: dict[str, str]
) -> None:
    work = served.repository("mono")
    tagged = served.commit(work, {"images/gpu/Dockerfile.gpu": DOCKERFILE, "README": "top\n"})
    git("tag", "-a", "v1", "-m", "release", cwd=work)  # annotated: its commit is the peeled ref
    git("push", "-q", "origin", "v1", cwd=work)
    served.commit(work, {"README": "later\n"})
    context = f"{served.url_of('mono')}#v1:images/gpu"
    source = _file(tmp_path, {"build_context": context, "dockerfile_path": "Dockerfile.gpu"})

    run_kiln("env", "register", "-f", str(source), env=env)

    docker = _show(env, "gitctx:1")["definition"]["docker"]
    assert docker["build_context_commit"] == tagged
    assert docker["dockerfile_path"] == "Dockerfile.gpu"


def test_a_full_commit_as_the_ref_is_that_commit(
    tmp_path: Path, served: GitServer, env: dict[str, str]
) -> None:
    work = served.repository("app")
    first = served.commit(work, {"Dockerfile": DOCKERFILE})
    served.commit(work, {"README": "later\n"})

    run_kiln("env", "register", "-f", str(_file(tmp_path, {"build_context": f"{served.url_of('app')}#{first}"})), env=env)  # fmt: skip

    assert _show(env, "gitctx:1")["definition"]["docker"]["build_context_commit"] == first


@pytest.mark.parametrize(
    ("context", "dockerfile", "code", "said"),
    [
        ("{url}#nosuch", None, 2, "has no branch or tag 'nosuch'"),
        ("{url}#main:nowhere", None, 2, "has no folder nowhere"),
        ("{url}#main", "Dockerfile.gpu", 2, "`docker.dockerfile_path`: Dockerfile.gpu not found"),
        ("{missing}", None, 5, "git ls-remote"),
        ("git://127.0.0.1:9/app", None, 5, "git ls-remote git://127.0.0.1:9/app failed"),
        ("https://kiln:s3cr3t-t0ken@127.0.0.1/app.git", None, 2, "carries a user name, password"),
        ("https://ghp_s3cr3tt0ken@127.0.0.1/app.git", None, 2, "let a git credential helper"),
        ("ftp://127.0.0.1/app.git", None, 2, "ftp:// is not a git transport"),
    ],
)
def test_bad_git_contexts_are_one_line_and_register_nothing(
    tmp_path: Path,
    served: GitServer,
    env: dict[str, str],
    context: str,
    dockerfile: str | None,
    code: int,
    said: str,
) -> None:
    served.commit(served.repository("app"), {"Dockerfile": DOCKERFILE})
    written = context.format(url=served.url_of("app"), missing=served.url_of("missing"))
    docker = {"build_context": written, "dockerfile_path": dockerfile}
    source = _file(tmp_path, {k: v for k, v in docker.items() if v})

    result = run_kiln("env", "register", "-f", str(source), env=env, check=False)

    assert result.returncode == code, result.stderr
    assert said in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "s3cr3t" not in result.stderr + result.stdout
    assert _versions(env) == []


def test_azure_v2_reads_and_writes_the_git_url_and_says_the_commit_is_not_kept(
    tmp_path: Path, served: GitServer, env: dict[str, str]
) -> None:
    served.commit(served.repository("app"), {"docker/Dockerfile.cpu": DOCKERFILE})
    context = f"{served.url_of('app')}#main:docker"
    source = tmp_path / "env.yml"
    azure = {
        "$schema": "https://azuremlschemas.azureedge.net/latest/environment.schema.json",
        "name": "fromazure",
        "build": {"path": context, "dockerfile_path": "Dockerfile.cpu"},
    }
    source.write_text(yaml.safe_dump(azure))

    run_kiln("env", "register", "-f", str(source), env=env)
    saved = run_kiln("env", "download", "fromazure", "--format", "azure-v2", "-d", str(tmp_path / "out"), env=env)  # fmt: skip
    run_kiln("env", "register", "-f", str(tmp_path / "out" / "environment.yaml"), env=env)

    written = yaml.safe_load((tmp_path / "out" / "environment.yaml").read_text())
    assert written["build"] == {"path": context, "dockerfile_path": "Dockerfile.cpu"}
    assert "docker.build_context_commit" in saved.stderr
    assert _versions(env) == ["fromazure:1"]  # read back: the same definition, the same version


def test_azure_v1_reads_and_writes_a_git_build_context(
    tmp_path: Path, served: GitServer, env: dict[str, str]
) -> None:
    commit = served.commit(served.repository("app"), {"docker/Dockerfile.gpu": DOCKERFILE})
    context = f"{served.url_of('app')}#main:docker"
    folder = tmp_path / "v1"
    folder.mkdir()
    v1 = {
        "name": "fromv1",
        "version": None,
        "docker": {
            "enabled": False,
            "baseImage": None,
            "buildContext": {
                "locationType": "git",
                "location": context,
                "dockerfilePath": "Dockerfile.gpu",
            },
        },
    }
    (folder / "azureml_environment.json").write_text(json.dumps(v1))

    run_kiln("env", "register", "-f", str(folder), "--format", "azure-v1", env=env)
    run_kiln("env", "download", "fromv1", "--format", "azure-v1", "-d", str(tmp_path / "out"), env=env)  # fmt: skip

    docker = _show(env, "fromv1:1")["definition"]["docker"]
    assert (docker["build_context"], docker["build_context_commit"]) == (context, commit)
    written = json.loads((tmp_path / "out" / "azureml_environment.json").read_text())
    assert written["docker"]["buildContext"] == v1["docker"]["buildContext"]  # type: ignore[index]


def test_a_downloaded_kiln_yaml_keeps_the_commit_and_rebuilds_the_same_tree(
    tmp_path: Path, served: GitServer, env: dict[str, str]
) -> None:
    work = served.repository("app")
    first = served.commit(work, {"Dockerfile": DOCKERFILE})
    source = _file(tmp_path, {"build_context": f"{served.url_of('app')}#main"})
    run_kiln("env", "register", "-f", str(source), env=env)
    run_kiln("env", "download", "gitctx", "--format", "kiln", "-d", str(tmp_path / "out"), env=env)  # fmt: skip
    served.commit(work, {"README": "moved on\n"})

    pinned = run_kiln("env", "register", "-f", str(tmp_path / "out" / "kiln.yaml"), env=env)

    assert f"build_context_commit: {first}" in (tmp_path / "out" / "kiln.yaml").read_text()
    assert "gitctx:1" in pinned.stdout + pinned.stderr
    assert _versions(env) == ["gitctx:1"]
