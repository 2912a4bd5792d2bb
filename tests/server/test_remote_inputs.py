"""Definitions with local files on a team server: registering uploads a local wheel, and a build
context folder as its files plus its manifest, to the server's artifact store; another machine
builds or downloads them from there, every byte checked. The server refuses a definition whose
files its store does not hold."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from kiln.environment.files import tree_digest
from kilntesting.builds import PackageIndex, make_wheel
from kilntesting.cli import run_kiln
from kilntesting.teamserver import Team

WHEEL = "gamma-1.0-py3-none-any.whl"


def _machine(team: Team, token: str, folder: Path) -> dict[str, str]:
    return {
        **team.env,
        "KILN_WORKSPACE": team.url,
        "KILN_TOKEN": token,
        "KILN_CACHE_DIR": str(folder / "cache"),
        "KILN_DATA_DIR": str(folder / "data"),
    }


def test_a_local_wheel_travels_through_the_server_to_another_machine(
    team: Team, tmp_path: Path, package_index: PackageIndex
) -> None:
    name = f"wheel-remote-{team.database_url is not None}"
    source = tmp_path / "source"
    (source / "wheels").mkdir(parents=True)
    made = make_wheel(tmp_path / "made", "gamma", "1.0", body="ANSWER = 42")
    shutil.copyfile(made, source / "wheels" / WHEEL)
    (source / "kiln.yaml").write_text(
        f"name: {name}\npython:\n  version: '3.11'\n  pip:\n"
        f"    index_url: {package_index.url}\n    packages: [./wheels/{WHEEL}]\n"
    )
    token = team.token("wren", "contributor")
    first = _machine(team, token, tmp_path / "machine-a")
    run_kiln("env", "register", "-f", str(source / "kiln.yaml"), env=first)
    digest = hashlib.sha256(made.read_bytes()).hexdigest()
    assert team.call("HEAD", f"/api/v1/artifacts/{digest}", token).status_code == 200

    # Registering again from the same folder is the same version: same content, same digests.
    again = run_kiln("env", "register", "-f", str(source / "kiln.yaml"), env=first)
    assert "Unchanged" in again.stdout

    shutil.rmtree(source)  # the second machine has only the server
    second = _machine(team, token, tmp_path / "machine-b")
    built = json.loads(run_kiln("env", "build", name, "--json", env=second).stdout)
    answer = subprocess.run(
        [built["interpreter"], "-c", "import gamma; print(gamma.ANSWER)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert answer.stdout.strip() == "42"


def test_a_build_context_folder_travels_file_by_file_and_comes_back_whole(
    team: Team, tmp_path: Path
) -> None:
    name = f"context-remote-{team.database_url is not None}"
    source = tmp_path / "source"
    context = source / "context"
    (context / "scripts").mkdir(parents=True)
    (context / "Dockerfile").write_text("FROM scratch\nCOPY scripts /scripts\n")
    (context / "scripts" / "setup.sh").write_text("#!/bin/sh\necho ready\n")
    (context / "scripts" / "setup.sh").chmod(0o755)
    (context / "notes.txt").write_text("kept\n")
    (source / "kiln.yaml").write_text(
        f"name: {name}\npython:\n  version: '3.11'\ndocker:\n  build_context: ./context\n"
    )
    token = team.token("cass", "contributor")
    first = _machine(team, token, tmp_path / "machine-a")
    run_kiln("env", "register", "-f", str(source / "kiln.yaml"), env=first)
    tree = tree_digest(context)
    # The server holds the folder's manifest under the folder's digest, and each file by its own.
    manifest = team.call("GET", f"/api/v1/artifacts/{tree}", token)
    assert manifest.status_code == 200 and b"scripts/setup.sh\0x\0" in manifest.content

    shutil.rmtree(source)
    second = _machine(team, team.token("rhea", "reader"), tmp_path / "machine-b")
    out = tmp_path / "downloaded"
    run_kiln("env", "download", name, "-d", str(out), env=second)
    copied = out / "context"
    assert (copied / "Dockerfile").read_text() == "FROM scratch\nCOPY scripts /scripts\n"
    assert (copied / "notes.txt").read_text() == "kept\n"
    assert os.access(copied / "scripts" / "setup.sh", os.X_OK)


def test_the_server_refuses_files_its_store_does_not_hold(team: Team) -> None:
    token = team.token("nell", "contributor")
    missing = "ab" * 32
    definitions = [
        {"name": "no-wheel", "python": {"version": "3.11", "pip": {
            "packages": ["./w/x-1.0-py3-none-any.whl"],
            "file_digests": {"./w/x-1.0-py3-none-any.whl": missing}}}},
        {"name": "no-context", "python": {"version": "3.11"},
         "docker": {"build_context": "./ctx", "build_context_digest": missing}},
        # A path entry whose digest the client left out: never registered without its content.
        {"name": "no-digest", "python": {"version": "3.11", "pip": {
            "packages": ["./w/x-1.0-py3-none-any.whl"]}}},
    ]  # fmt: skip
    for definition in definitions:
        answer = team.call("POST", "/api/v1/environments", token, json=definition)
        assert answer.status_code == 422, answer.text
        detail = answer.json()["detail"]
        assert "register with the kiln client" in detail and "\n" not in detail
        listed = team.call("GET", f"/api/v1/environments?search={definition['name']}", token)
        assert listed.json() == []
