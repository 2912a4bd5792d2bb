"""A run's snapshot and outputs in the team server's artifact store: a run carried out on one
machine (a data folder of its own) is downloaded and reproduced on another, every file checked
against its sha256; a file the store lacks, or a manifest that lies, is never shown as the
run's."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

from kiln.filetrees import FileEntry, encode, tree_digest_of
from kiln.httpclient import ServerClient
from kiln.remoteartifacts import upload
from kiln.workspace import Workspace
from kilntesting.cli import run_kiln
from kilntesting.runs import write_script
from kilntesting.teamserver import Team

TRAIN = """
    import os, sys
    os.makedirs("outputs/sub", exist_ok=True)
    open("outputs/model.bin", "wb").write(bytes(range(256)) * 4096)  # 1 MiB
    mode = " exec" if os.access("bin/tool.sh", os.X_OK) else " plain"
    open("outputs/sub/notes.txt", "w").write(open("data/notes.txt").read() + sys.argv[1] + mode)
"""
UPLOADS = '"PUT /api/v1/artifacts/'


def _source(folder: Path) -> Path:
    write_script(folder, "train.py", TRAIN)
    (folder / "data").mkdir()
    (folder / "data" / "notes.txt").write_text("trained on ")
    tool = folder / "bin" / "tool.sh"
    tool.parent.mkdir()
    tool.write_text("#!/bin/sh\necho tool\n")
    tool.chmod(0o755)
    return folder


def _store(team: Team) -> Path:
    """The server's file store (the served workspace's own)."""
    return Workspace(team.root / ("server" if team.database_url else "ws")).root / "artifacts"


def _submit(env: dict[str, str], src: Path, experiment: str) -> dict[str, Any]:
    submit = ["run", "submit", "-d", str(src), "-e", experiment, "--json", "train.py", "x"]
    made: dict[str, Any] = json.loads(run_kiln(*submit, env=env).stdout)
    assert (made["status"], made["exit_code"]) == ("Completed", 0), made
    return made


def _files(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {
        p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mode & 0o111)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_a_run_on_one_machine_is_downloaded_and_reproduced_on_another(
    team: Team, tmp_path: Path, shared_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann = team.token("ann", "contributor")
    a = team.machine(ann, tmp_path / "a", shared_cache)
    src = _source(tmp_path / "src")
    run_id = _submit(a, src, "files-ab")["id"]
    # Machine B: another data folder, a reader's token.
    b = team.machine(team.token("rob", "reader"), tmp_path / "b", shared_cache)
    out = tmp_path / "out-b"
    listed = run_kiln("run", "download", run_id, "-d", str(out), "--json", env=b).stdout
    assert sorted(json.loads(listed)) == sorted(
        str(out / n) for n in ("outputs/model.bin", "outputs/sub/notes.txt", "logs/output.log")
    )
    assert (out / "outputs" / "model.bin").read_bytes() == bytes(range(256)) * 4096
    assert (out / "outputs" / "sub" / "notes.txt").read_text() == "trained on x exec"
    assert f"run {run_id}: Completed" in (out / "logs" / "output.log").read_text()
    # The server host (its web UI too) reads them from its own file store.
    host = {**team.env, "KILN_WORKSPACE": str(_store(team).parent.parent)}
    on_host = tmp_path / "out-host"
    run_kiln("run", "download", run_id, "-d", str(on_host), "--prefix", "outputs", env=host)
    assert _files(on_host / "outputs") == _files(out / "outputs")
    # The SDK on machine B, in this process.
    for name, value in {**b, "KILN_DATA_DIR": str(tmp_path / "b-sdk")}.items():
        monkeypatch.setenv(name, value)
    from kiln.sdk.runs import Run

    run = Run(Workspace(team.url), run_id)
    assert run.get_file_names() == ["outputs/model.bin", "outputs/sub/notes.txt", "logs/output.log"]
    got = run.download_files(output_directory=tmp_path / "sdk", append_prefix=False)
    assert sorted(p.relative_to(tmp_path / "sdk").as_posix() for p in got) == [
        "model.bin",
        "sub/notes.txt",
    ]
    assert (tmp_path / "sdk" / "sub" / "notes.txt").read_text() == "trained on x exec"
    # Reproduced on machine B by its owner: the snapshot comes back from the store, whole, with
    # its executable bit (the script says); nothing the store holds is sent again.
    uploads = team.log.read_text().count(UPLOADS)
    b_ann = {**b, "KILN_TOKEN": ann, "KILN_DATA_DIR": str(tmp_path / "b-ann")}
    again = json.loads(run_kiln("run", "reproduce", run_id, "--json", env=b_ann).stdout)
    assert (again["status"], again["reproduces"]) == ("Completed", run_id)
    shown = json.loads(run_kiln("run", "show", again["id"], "--json", env=b).stdout)
    assert (
        shown["snapshot_digest"]
        == json.loads(run_kiln("run", "show", run_id, "--json", env=b).stdout)["snapshot_digest"]
    )
    assert team.log.read_text().count(UPLOADS) == uploads
    redone = tmp_path / "out-again"
    run_kiln("run", "download", again["id"], "-d", str(redone), "--prefix", "outputs", env=b)
    assert _files(redone / "outputs") == _files(out / "outputs")


def test_a_tampered_blob_or_swapped_manifest_is_refused_and_nothing_is_written(
    team: Team, tmp_path: Path, shared_cache: Path
) -> None:
    ann = team.token("ann", "contributor")
    a = team.machine(ann, tmp_path / "a", shared_cache)
    run_id = _submit(a, _source(tmp_path / "src"), "files-tamper")["id"]
    record = team.call("GET", f"/api/v1/run-records/{run_id}", ann).json()
    notes = hashlib.sha256(b"trained on x exec").hexdigest()
    blob = _store(team) / "sha256" / notes[:2] / notes
    blob.write_bytes(b"trained on poison")  # behind the server's back, as a disk fault could
    c = team.machine(ann, tmp_path / "c", shared_cache)
    out = tmp_path / "out-c"
    refused = run_kiln("run", "download", run_id, "-d", str(out), env=c, check=False)
    assert refused.returncode == 2
    assert f"does not match sha256 {notes}" in refused.stderr
    assert not (out / "outputs" / "sub" / "notes.txt").exists()
    blob.write_bytes(b"trained on x exec")
    # A manifest swapped in the server's registry: it does not list the outputs' tree digest.
    team.execute_sql(
        "UPDATE runs SET outputs_manifest = :m WHERE id = :id",
        m=record["snapshot_manifest"],
        id=run_id,
    )
    d = team.machine(ann, tmp_path / "d", shared_cache)
    swapped = run_kiln("run", "download", run_id, "-d", str(out), env=d, check=False)
    assert swapped.returncode == 2
    assert "the server's manifest does not list the files whose tree digest is" in swapped.stderr
    assert not (out / "outputs").exists()


def test_outputs_the_store_does_not_hold_are_never_recorded(team: Team, tmp_path: Path) -> None:
    """A client whose upload was cut off midway (a real cut-off request) and which then names
    the file anyway: the server refuses, and the run shows no such file."""
    ann = team.token("ann", "contributor")
    a = team.machine(ann, tmp_path / "a", tmp_path / "cache")
    write_script(tmp_path / "src", "train.py", "print('no outputs')\n")
    submit = ["run", "submit", "-d", str(tmp_path / "src"), "-e", "files-cut", "--json", "train.py"]
    run_id = json.loads(run_kiln(*submit, env=a).stdout)["id"]
    weights = os.urandom(3 * 1024 * 1024)
    digest = hashlib.sha256(weights).hexdigest()
    team.send_cut_off(f"/api/v1/artifacts/{digest}", ann, len(weights), weights[:1_000_000])
    entries = [FileEntry("model.bin", digest, len(weights), 0o644)]
    manifest = upload(ServerClient(team.url, ann), encode(entries))
    values = {
        "outputs_digest": tree_digest_of(entries),
        "outputs": [{"name": "outputs/model.bin", "size": len(weights)}],
        "outputs_manifest": manifest,
    }
    answer = team.call("PATCH", f"/api/v1/run-records/{run_id}", ann, json={"values": values})
    assert answer.status_code == 422
    assert answer.json()["detail"] == (
        f"the outputs of run {run_id}: the artifact store lacks model.bin (sha256 {digest}); "
        "upload the files before naming them"
    )
    no_manifest = {k: v for k, v in values.items() if k != "outputs_manifest"}
    answer = team.call("PATCH", f"/api/v1/run-records/{run_id}", ann, json={"values": no_manifest})
    assert answer.status_code == 422
    assert "its outputs need `outputs_manifest`" in answer.json()["detail"]
    shown = json.loads(run_kiln("run", "show", run_id, "--json", env=a).stdout)
    assert shown["files"] == ["logs/output.log"]


def test_a_reader_cannot_upload_or_name_files(team: Team) -> None:
    reader = team.token("rhea", "reader")
    digest = hashlib.sha256(b"x").hexdigest()
    for method, path, body in (
        ("POST", "/api/v1/artifacts/missing", {"sha256": [digest]}),
        ("POST", f"/api/v1/artifacts/{digest}/upload-url", None),
    ):
        assert team.call(method, path, reader, json=body).status_code == 403
    assert team.call("PUT", f"/api/v1/artifacts/{digest}", reader, content=b"x").status_code == 403
    assert team.call("HEAD", f"/api/v1/artifacts/{digest}", reader).status_code == 404
