"""A conda channel behind HTTP basic auth, written ``http://${USER_VAR}:${PASS_VAR}@host/...``:
served for real on 127.0.0.1 (an ``http.server`` that answers 401 without the right
``Authorization`` header), solved and installed by real rattler. The credentials are read from
the environment at build time only and land in nothing Kiln writes or prints."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kiln import catalog
from kiln.builders import conda
from kiln.builders.base import BuildContext, BuildError
from kiln.buildlog import NullLog
from kiln.builds import ensure_built
from kiln.environment.validation import validate_definition
from kiln.workspace import Workspace
from kilntesting.builds import PackageIndex, every_byte_under, one_line_without, served_index
from kilntesting.cli import run_kiln
from kilntesting.conda_channel import hello_channel

USER = "carol-builder"
PASSWORD = "Sw0rdfish-conda-7d2e"
WRONG = "not-the-password-1"
HEADER = base64.b64encode(f"{USER}:{PASSWORD}".encode())
SOLVED = {"hello-data-0.1-h0_0", "hello-lib-2.0-h0_0", "hello-tool-1.0-h0_0"}


@pytest.fixture
def private_channel(tmp_path: Path) -> Iterator[PackageIndex]:
    """The hello channel under ``/conda`` of a server that requires USER:PASSWORD."""
    with served_index(tmp_path / "served") as server:
        hello_channel(server.root / "conda")
        server.credentials = (USER, PASSWORD)
        yield server


def _definition(url: str) -> dict[str, Any]:
    conda_part = {"channels": [url], "packages": ["python=3.11", "hello-data", "hello-tool"]}
    return {"name": "private", "python": {"version": "3.11", "conda": conda_part}}


def _bare(server: PackageIndex) -> str:
    return f"http://127.0.0.1:{server.port}/conda"


def _referenced(server: PackageIndex) -> str:
    return f"http://${{CONDA_USER}}:${{CONDA_PASS}}@127.0.0.1:{server.port}/conda"


def _one_line(error: BaseException) -> str:
    return one_line_without(error, PASSWORD, WRONG)


def test_a_channel_behind_basic_auth_builds_and_its_password_is_written_nowhere(
    sqlite_workspace: Workspace,
    private_channel: PackageIndex,
    cache_dir: Path,
    cli_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = _referenced(private_channel)
    record = catalog.register(sqlite_workspace, validate_definition(_definition(url))).record
    monkeypatch.setenv("CONDA_USER", USER)

    monkeypatch.delenv("CONDA_PASS", raising=False)
    with pytest.raises(BuildError) as unset:
        ensure_built(sqlite_workspace, record)
    assert _one_line(unset.value) == (
        f"the conda channel {url} uses ${{CONDA_PASS}}, which is not set; export CONDA_PASS"
    )
    assert private_channel.requests == []  # refused before anything was asked

    monkeypatch.setenv("CONDA_PASS", WRONG)
    with pytest.raises(BuildError) as wrong:
        ensure_built(sqlite_workspace, record, retry=True)
    assert _one_line(wrong.value) == (
        f"the conda channel {url} refused the credentials read from CONDA_USER, CONDA_PASS "
        "(401 Unauthorized); check their values"
    )

    monkeypatch.setenv("CONDA_PASS", PASSWORD)
    built = ensure_built(sqlite_workspace, record, retry=True)
    assert {p.stem for p in (built.path / "conda-meta").glob("*.json")} == SOLVED
    records = json.loads(built.lock.lock_text)["conda"]
    assert {r["url"].rpartition("/")[0] for r in records} == {f"{_bare(private_channel)}/noarch"}
    assert USER not in built.lock.lock_text

    # Another machine (an empty cache) installs the same lock, downloading through the header.
    monkeypatch.setenv("KILN_CACHE_DIR", str(tmp_path / "other-cache"))
    private_channel.requests.clear()
    again = ensure_built(sqlite_workspace, record)
    assert again.built_now and again.lock.lock_digest == built.lock.lock_digest
    assert "/conda/noarch/hello-tool-1.0-h0_0.tar.bz2" in private_channel.requests

    env = {**cli_env, "CONDA_USER": USER, "CONDA_PASS": PASSWORD}
    printed = [
        run_kiln("env", "build", "private", "--json", env=env),
        run_kiln("env", "logs", "private", env=env),
        run_kiln("env", "show", "private", "--build", "--json", env=env),
        run_kiln("env", "lock", "private", "--format", "conda", env=env),
        run_kiln("cache", "list", "--json", env=env),
    ]
    assert f"{_bare(private_channel)}/noarch/hello-tool-1.0-h0_0.tar.bz2#" in printed[3].stdout
    written = b"".join(
        every_byte_under(folder)
        for folder in (sqlite_workspace.path, cache_dir, tmp_path / "other-cache")
    )
    assert b"hello-tool" in written and b"rattler: installing" in written
    for secret in (PASSWORD, WRONG, HEADER.decode()):
        assert secret.encode() not in written
        assert not any(secret in r.stdout + r.stderr for r in printed)


def test_a_channel_that_wants_credentials_it_was_not_given_names_the_fix(
    private_channel: PackageIndex, tmp_path: Path
) -> None:
    definition = validate_definition(_definition(_bare(private_channel)))
    ctx = BuildContext(NullLog(), tmp_path / "uv")
    with pytest.raises(BuildError) as refused:
        conda.resolve(definition, conda.target(definition, ctx), ctx)
    assert _one_line(refused.value) == (
        f"the conda channel {_bare(private_channel)} needs credentials (401 Unauthorized); write "
        f"http://USER:${{CONDA_PASSWORD}}@127.0.0.1:{private_channel.port}/conda and export "
        "CONDA_PASSWORD"
    )


def test_a_reference_outside_the_credentials_is_refused_before_anything_is_solved(
    tmp_path: Path,
) -> None:
    """``/t/${TOKEN}/``: the package URLs rattler derives from the channel would carry it."""
    channel = "https://conda.example/t/${CONDA_TOKEN}/private"
    definition = validate_definition(_definition(channel))
    ctx = BuildContext(NullLog(), tmp_path / "uv", {"CONDA_TOKEN": PASSWORD})
    with pytest.raises(BuildError) as refused:
        conda.resolve(definition, conda.target(definition, ctx), ctx)
    assert _one_line(refused.value) == (
        f"`python.conda.channels`: {channel!r} uses ${{CONDA_TOKEN}} outside its user:password "
        "part, where it would be written into the lock; put credentials before the host: "
        "https://USER:${VAR}@HOST/CHANNEL"
    )
