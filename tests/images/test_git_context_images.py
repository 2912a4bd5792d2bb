"""An image built with podman from a build context given as a git URL, served by a real
``git daemon`` on 127.0.0.1: the registered commit is fetched (not the branch's newer head),
its subfolder is the context, and the image says where it came from."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from kilntesting.cli import run_kiln
from kilntesting.gitserver import GitServer, git_server
from kilntesting.images import BaseImage


@pytest.fixture
def served(tmp_path: Path) -> Iterator[GitServer]:
    with git_server(tmp_path / "git") as server:
        yield server


def _labels(reference: str) -> dict[str, str]:
    shown = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{json .Labels}}", reference],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    labels: dict[str, str] = json.loads(shown)
    return labels


def _file_in_image(reference: str, path: str) -> str:
    done = subprocess.run(
        ["podman", "run", "--rm", "--pull=never", reference, "cat", path],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_an_image_is_built_from_the_registered_commit_of_a_git_subfolder(
    tmp_path: Path, base_image: BaseImage, served: GitServer
) -> None:
    work = served.repository("app")
    dockerfile = f"FROM {base_image.local_ref}\nCOPY marker.txt /opt/marker\n"
    registered = served.commit(
        work,
        {
            "Dockerfile": "FROM scratch\n",  # the top's: not the one the definition names
            "images/cpu/Dockerfile.cpu": dockerfile,
            "images/cpu/marker.txt": "from the registered commit\n",
        },
    )
    folder = tmp_path / "ws"
    run_kiln("init", str(folder))
    env = {"KILN_WORKSPACE": str(folder), "KILN_CACHE_DIR": str(tmp_path / "cache")}
    source = tmp_path / "gitimg.yml"
    context = f"{served.url_of('app')}#main:images/cpu"
    docker = {"build_context": context, "dockerfile_path": "Dockerfile.cpu"}
    source.write_text(yaml.safe_dump({"name": "gitimg", "python": {"user_managed": True}, "docker": docker}))  # fmt: skip
    run_kiln("env", "register", "-f", str(source), env=env)
    served.commit(work, {"images/cpu/marker.txt": "a later commit\n"})  # the branch moves on

    built = json.loads(run_kiln("env", "build", "gitimg", "--json", env=env).stdout)

    reference = built["image"]["reference"]
    assert _file_in_image(reference, "/opt/marker") == "from the registered commit"
    labels = _labels(reference)
    assert labels["org.opencontainers.image.revision"] == registered
    assert labels["org.opencontainers.image.source"] == served.url_of("app")
    assert labels["io.kiln.environment"] == "gitimg:1"
    log = run_kiln("env", "logs", "gitimg", env=env).stdout
    assert f"at commit {registered}" in log


def test_a_dockerfile_missing_at_build_time_names_the_path(
    tmp_path: Path, base_image: BaseImage, served: GitServer
) -> None:
    """A commit recorded in the file (pinned, so not checked at registration) whose tree lacks
    the Dockerfile fails the build with the path and the commit."""
    work = served.repository("app")
    commit = served.commit(work, {"README": "no Dockerfile here\n"})
    folder = tmp_path / "ws"
    run_kiln("init", str(folder))
    env = {"KILN_WORKSPACE": str(folder), "KILN_CACHE_DIR": str(tmp_path / "cache")}
    source = tmp_path / "gitimg.yml"
    docker = {"build_context": served.url_of("app"), "build_context_commit": commit}
    source.write_text(yaml.safe_dump({"name": "gitimg", "python": {"user_managed": True}, "docker": docker}))  # fmt: skip
    run_kiln("env", "register", "-f", str(source), env=env)

    result = run_kiln("env", "build", "gitimg", env=env, check=False)

    assert result.returncode == 6, result.stderr
    assert (
        f"`docker.dockerfile_path`: Dockerfile is not in the top of {served.url_of('app')} "
        f"at commit {commit[:12]}" in result.stderr
    )
