"""The conda builder against a real local channel (made by hand, indexed by rattler), real
rattler solves and installs, real uv virtualenvs, and a real package index for the pip part."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from kiln import catalog
from kiln.builders import conda
from kiln.builders.base import BuildContext, BuildError, Lock, Target
from kiln.builders.choice import choose
from kiln.builds import ensure_built
from kiln.environment.definition import EnvironmentDefinition
from kiln.environment.validation import validate_definition
from kiln.registry.schema import builds
from kiln.workspace import Workspace
from kilntesting.builds import PackageIndex
from kilntesting.conda_channel import CondaChannel, hello_channel

HELLO = ["hello-data", "hello-tool>=1.0"]
SOLVED = {"hello-data-0.1-h0_0", "hello-lib-2.0-h0_0", "hello-tool-1.0-h0_0"}


class TextLog:
    def __init__(self) -> None:
        self.phases: list[str] = []
        self.text = ""

    def phase(self, name: str) -> None:
        self.phases.append(name)

    def detail(self, text: str) -> None:
        pass

    def write(self, text: str) -> None:
        self.text += text


@pytest.fixture
def channel(tmp_path: Path) -> CondaChannel:
    return hello_channel(tmp_path / "channel")


def context(cache: Path) -> BuildContext:
    return BuildContext(TextLog(), cache / "uv")


def hello(channel: CondaChannel, packages: list[str] = HELLO) -> dict[str, Any]:
    conda_part = {"channels": [str(channel.root)], "packages": ["python=3.11", *packages]}
    return {"name": "hello", "python": {"version": "3.11", "conda": conda_part}}


def build_into(
    dest: Path, definition: EnvironmentDefinition, ctx: BuildContext, lock: Lock | None = None
) -> tuple[Target, Lock]:
    target = conda.target(definition, ctx)
    lock = lock or conda.resolve(definition, target, ctx)
    dest.mkdir()
    conda.build(definition, lock, target, dest, ctx)
    return target, lock


def conda_meta(prefix: Path) -> set[str]:
    return {p.stem for p in (prefix / "conda-meta").glob("*.json")}


def test_solves_locks_and_installs_exactly_the_solved_conda_packages(
    channel: CondaChannel, tmp_path: Path
) -> None:
    definition = validate_definition(hello(channel))
    assert choose(definition) is conda
    ctx, prefix = context(tmp_path / "cache"), tmp_path / "prefix"
    target, lock = build_into(prefix, definition, ctx)

    assert target.platform == "linux-64-cp311"
    data = json.loads(lock.text)
    assert lock.format == "kiln-conda.json" and data["pip"] is None
    assert [r["name"] for r in data["conda"]] == ["hello-data", "hello-lib", "hello-tool"]
    for record in data["conda"]:
        assert len(record["sha256"]) == 64 and len(record["md5"]) == 32
        assert record["url"].startswith(channel.url) and record["subdir"] == "noarch"
    assert lock.packages == [
        {"name": "hello-data", "version": "0.1"},
        {"name": "hello-lib", "version": "2.0"},
        {"name": "hello-tool", "version": "1.0"},
    ]
    assert conda.resolve(definition, target, ctx).text == lock.text  # the same solve, same lock

    assert conda_meta(prefix) == SOLVED
    assert (prefix / "share/hello-data/data.txt").read_text() == "hello-data 0.1\n"
    assert (prefix / "share/hello-lib/data.txt").read_text() == "hello-lib 2.0\n"
    hello_tool = subprocess.run(
        [str(prefix / "bin/hello-tool-hello")], capture_output=True, text=True, check=True
    )
    assert hello_tool.stdout == "hello from hello-tool 1.0\n"
    python = conda.interpreter(prefix)
    out = subprocess.run(
        [str(python), "-c", "import sys; print(sys.prefix, sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == f"{prefix} (3, 11)"
    assert conda.health_check(prefix, definition) is None
    assert conda.quick_check(prefix) is None

    (prefix / "conda-meta/hello-lib-2.0-h0_0.json").unlink()
    assert conda.health_check(prefix, definition) == (
        "conda packages missing from conda-meta: hello-lib-2.0-h0_0"
    )


def test_a_rebuild_from_the_lock_installs_the_locked_version_not_the_newest(
    channel: CondaChannel, tmp_path: Path
) -> None:
    definition = validate_definition(hello(channel))
    _, lock = build_into(tmp_path / "first", definition, context(tmp_path / "cache"))

    channel.publish("hello-lib", "3.0")  # re-indexed: a fresh solve would now take 3.0
    fresh = context(tmp_path / "fresh-cache")  # no package cache: files come from the channel
    target = conda.target(definition, fresh)
    newest = {
        r["name"]: r for r in json.loads(conda.resolve(definition, target, fresh).text)["conda"]
    }
    assert newest["hello-lib"]["version"] == "3.0"
    assert newest["hello-data"] == json.loads(lock.text)["conda"][0]  # re-indexing changed nothing

    build_into(tmp_path / "again", definition, fresh, lock)
    assert conda_meta(tmp_path / "again") == SOLVED
    assert (tmp_path / "again/share/hello-lib/data.txt").read_text() == "hello-lib 2.0\n"


def test_pip_packages_go_into_the_same_prefix_from_the_pip_part_of_the_lock(
    channel: CondaChannel, package_index: PackageIndex, tmp_path: Path
) -> None:
    package_index.publish("pip-hello", "1.0")
    data = hello(channel, ["hello-data"])
    data["python"]["pip"] = {"packages": ["pip-hello"], "index_url": package_index.url}
    definition = validate_definition(data)
    prefix = tmp_path / "prefix"
    _, lock = build_into(prefix, definition, context(tmp_path / "cache"))

    pip_part = json.loads(lock.text)["pip"]
    assert 'name = "pip-hello"' in pip_part
    assert {"name": "pip-hello", "version": "1.0"} in lock.packages
    assert {"name": "hello-data", "version": "0.1"} in lock.packages
    assert (prefix / "share/hello-data/data.txt").is_file()
    assert conda_meta(prefix) == {"hello-data-0.1-h0_0"}
    version = subprocess.run(
        [str(conda.interpreter(prefix)), "-c", "import pip_hello; print(pip_hello.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert version.strip() == "1.0"
    assert conda.health_check(prefix, definition) is None


@pytest.mark.parametrize(
    ("packages", "channel_path", "expected"),
    [
        (
            ["hello-data", "no-such-thing>=1"],
            None,
            "the conda package 'no-such-thing>=1' is in none of the channels {url}",
        ),
        (HELLO, "missing", "the conda channel {missing} cannot be read"),
        (
            ["hello-old", "hello-lib>=2"],
            None,
            "the conda packages hello-old, hello-lib>=2 cannot be installed together from {url}",
        ),
        (["hello-needs-python-4"], None, "cannot be installed together"),
        (["hello-pure"], None, "hello-pure-1.0: noarch: python conda packages cannot be installed"),
    ],
    ids=["missing-package", "missing-channel", "conflict", "python-too-old", "noarch-python"],
)
def test_bad_conda_input_is_one_clear_build_error(
    channel: CondaChannel,
    tmp_path: Path,
    packages: list[str],
    channel_path: str | None,
    expected: str,
) -> None:
    channel.publish("hello-old", "1.0", ["hello-lib <2"], index=False)
    channel.publish("hello-needs-python-4", "1.0", ["python >=4"], index=False)
    channel.publish("hello-pure", "1.0", ["python >=3.8"], noarch="python")
    data = hello(channel, packages)
    missing = tmp_path / "missing"
    if channel_path:
        data["python"]["conda"]["channels"] = [str(tmp_path / channel_path)]
    definition = validate_definition(data)
    ctx = context(tmp_path / "cache")
    with pytest.raises(BuildError) as caught:
        conda.resolve(definition, conda.target(definition, ctx), ctx)
    assert expected.format(url=channel.root, missing=missing) in str(caught.value)


def test_a_generic_package_that_needs_python_solves_against_this_machines_python(
    channel: CondaChannel, tmp_path: Path
) -> None:
    channel.publish("hello-py-tool", "1.0", ["python >=3.8", "hello-lib"])
    definition = validate_definition(hello(channel, ["hello-py-tool"]))
    ctx = context(tmp_path / "cache")
    lock = conda.resolve(definition, conda.target(definition, ctx), ctx)
    assert [p["name"] for p in lock.packages] == ["hello-lib", "hello-py-tool"]


def test_files_that_embed_the_prefix_get_the_final_path_when_given(
    channel: CondaChannel, tmp_path: Path
) -> None:
    channel.publish("hello-conf", "1.0", embeds_prefix=True)
    definition = validate_definition(hello(channel, ["hello-conf"]))
    ctx = context(tmp_path / "cache")
    target = conda.target(definition, ctx)
    lock = conda.resolve(definition, target, ctx)
    staged, final = tmp_path / "staged", tmp_path / "final"
    staged.mkdir()
    conda.build(definition, lock, target, staged, replace(ctx, final=final))
    assert (staged / "etc/hello-conf/prefix.txt").read_text() == f"prefix={final}\n"

    elsewhere = tmp_path / "elsewhere"
    build_into(elsewhere, definition, ctx, lock)
    assert (elsewhere / "etc/hello-conf/prefix.txt").read_text() == f"prefix={elsewhere}\n"
    assert isinstance(ctx.log, TextLog)
    assert f"warning: hello-conf-1.0-h0_0 embed the build folder {elsewhere}" in ctx.log.text


def test_ensure_built_builds_a_conda_environment_once_and_then_reuses_it(
    channel: CondaChannel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KILN_CACHE_DIR", str(tmp_path / "kiln-cache"))
    workspace = Workspace.create(tmp_path / "ws")
    try:
        record = catalog.register(workspace, validate_definition(hello(channel))).record
        first = ensure_built(workspace, record)
        assert first.built_now and first.builder == "conda"
        assert first.lock.lock_format == "kiln-conda.json"
        assert first.path.parent == tmp_path / "kiln-cache" / "envs"
        assert conda_meta(first.path) == SOLVED
        assert os.access(first.path / "bin/hello-tool-hello", os.X_OK)
        data = first.path / "share/hello-tool/data.txt"
        assert data.stat().st_nlink >= 2  # hard-linked from rattler's cache, beside uv's
        assert (tmp_path / "kiln-cache/conda-pkgs/hello-tool-1.0-h0_0").is_dir()
        subprocess.run([str(first.interpreter), "-c", "pass"], check=True)

        second = ensure_built(workspace, record)
        assert not second.built_now and second.path == first.path
        with workspace.engine.connect() as connection:
            rows = connection.execute(
                select(builds.c.status, builds.c.builder).where(
                    builds.c.build_hash == record.build_hash
                )
            ).all()
        assert [tuple(row) for row in rows] == [("succeeded", "conda")]
    finally:
        workspace.close()
