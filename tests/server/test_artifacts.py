"""The shared artifact store on the server's file system (the default), through a real server:
uploads are checked against their sha256 before they become visible, a cut-off upload leaves
nothing, clients check what they download, and the roles hold."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kiln.artifacts import DigestMismatch
from kiln.blobstores import open_blob_store
from kiln.errors import Forbidden, NotFound, UsageError
from kiln.httpclient import ServerClient
from kiln.remoteartifacts import download, upload
from kiln.workspace import Workspace
from kilntesting.cli import run_kiln
from kilntesting.images import free_port
from kilntesting.teamserver import Team, team_server

ART = "/api/v1/artifacts"


@pytest.fixture(scope="module")
def team(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    with team_server(tmp_path_factory.mktemp("artifacts")) as server:
        yield server


def _store_root(team: Team) -> Path:
    return Workspace(team.root / "ws").root / "artifacts" / "sha256"


def _leftovers(team: Team) -> list[Path]:
    """Temporary upload files the store left behind (there must never be any at rest)."""
    return list(_store_root(team).glob(".incoming-*"))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_upload_and_download_through_the_server(team: Team, tmp_path: Path) -> None:
    client = ServerClient(team.url, team.token("maker", "contributor"))
    data = os.urandom(6 * 1024 * 1024)  # over the 4 MiB body limit of the JSON API
    source = tmp_path / "model.bin"
    source.write_bytes(data)
    digest = upload(client, source)
    assert digest == _sha(data)
    # Kept where the server's own builds and runs keep theirs: the workspace's artifact store.
    assert Workspace(team.root / "ws").artifacts.blob_path(digest).read_bytes() == data
    assert upload(client, data) == digest  # already there: nothing sent, same answer

    destination = tmp_path / "out" / "model.bin"
    destination.parent.mkdir()
    assert download(client, digest, destination) == destination
    assert destination.read_bytes() == data
    head = team.call("HEAD", f"{ART}/{digest}", client.token)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(data))
    offer = team.call("GET", f"{ART}/{digest}/download-url", client.token).json()
    assert offer == {
        "sha256": digest,
        "exists": True,
        "url": None,
        "upload_id": None,
        "expires_in": None,
    }


def test_a_wrong_digest_is_refused_and_nothing_is_kept(team: Team) -> None:
    token = team.token("wrong", "contributor")
    claimed = _sha(b"what was meant")
    answer = team.call("PUT", f"{ART}/{claimed}", token, content=b"what was sent")
    assert answer.status_code == 400
    assert answer.json()["detail"] == (
        f"the upload does not match sha256 {claimed} (its bytes hash to "
        f"{_sha(b'what was sent')}); nothing was stored: send the file again"
    )
    assert team.call("HEAD", f"{ART}/{claimed}", token).status_code == 404
    assert team.call("HEAD", f"{ART}/{_sha(b'what was sent')}", token).status_code == 404
    assert _leftovers(team) == []


def test_an_upload_cut_off_midway_leaves_nothing(team: Team) -> None:
    """A real client that announces 4 MiB, sends 1 MiB and closes its socket."""
    token = team.token("cutter", "contributor")
    whole = os.urandom(4 * 1024 * 1024)
    digest = _sha(whole)
    team.send_cut_off(f"{ART}/{digest}", token, len(whole), whole[: 1024 * 1024])
    deadline = time.monotonic() + 10
    while _leftovers(team) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _leftovers(team) == []
    assert team.call("HEAD", f"{ART}/{digest}", token).status_code == 404
    assert team.up()
    # The same bytes sent whole are then accepted.
    assert team.call("PUT", f"{ART}/{digest}", token, content=whole).status_code == 201


def test_an_upload_over_the_bound_is_refused_before_it_is_read(team: Team) -> None:
    token = team.token("hoarder", "contributor")
    too_big = 65 * 1024**3
    answer = team.send_cut_off(f"{ART}/{_sha(b'')}", token, too_big, b"x" * 65536)
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b'{"detail":"the artifact is over 64 GiB; nothing was stored"}' in answer
    assert team.up()


def test_a_damaged_copy_is_caught_by_the_client(team: Team, tmp_path: Path) -> None:
    client = ServerClient(team.url, team.token("checker", "contributor"))
    digest = upload(client, b"the original bytes")
    stored = Workspace(team.root / "ws").artifacts.blob_path(digest)
    stored.write_bytes(b"the damaged bytes!")  # bit rot, or someone editing the store
    destination = tmp_path / "copy.bin"
    with pytest.raises(DigestMismatch) as caught:
        download(client, digest, destination)
    assert str(caught.value).startswith(
        f"the artifact downloaded for {destination} does not match sha256 {digest}"
    )
    assert not destination.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary file either


def test_readers_download_but_do_not_upload(team: Team, tmp_path: Path) -> None:
    digest = upload(ServerClient(team.url, team.admin_token), b"shared with readers")
    reader = ServerClient(team.url, team.token("looker", "reader"))
    assert download(reader, digest, tmp_path / "got").read_bytes() == b"shared with readers"
    with pytest.raises(Forbidden):
        upload(reader, b"a reader's bytes")
    answer = team.call("PUT", f"{ART}/{_sha(b'x')}", reader.token, content=b"x")
    assert answer.status_code == 403
    assert team.call("HEAD", f"{ART}/{_sha(b'x')}", reader.token).status_code == 404


def test_no_token_gets_401(team: Team) -> None:
    digest = _sha(b"anything")
    for method in ("GET", "HEAD", "PUT"):
        assert team.call(method, f"{ART}/{digest}", content=b"anything").status_code == 401
    assert team.call("POST", f"{ART}/{digest}/upload-url").status_code == 401


def test_absent_and_malformed_digests(team: Team, tmp_path: Path) -> None:
    client = ServerClient(team.url, team.token("asker", "reader"))
    with pytest.raises(NotFound, match=r"no artifact with sha256 0{64}; upload it first"):
        download(client, "0" * 64, tmp_path / "none")
    assert not (tmp_path / "none").exists()
    answer = team.call("GET", f"{ART}/not-a-digest", client.token)
    assert answer.status_code == 422
    assert answer.json()["detail"] == (
        "`sha256`: 'not-a-digest' is not a sha256 digest; give 64 lowercase hex digits"
    )
    commit = team.call(
        "POST", f"{ART}/{_sha(b'x')}/commit", team.admin_token, json={"upload_id": "0" * 32}
    )
    assert commit.status_code == 400
    assert "PUT the bytes to /api/v1/artifacts/" in commit.json()["detail"]


def test_store_urls_are_checked_and_never_hold_a_secret(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as plain:
        open_blob_store("s3://AKIAEXAMPLE:wJalrXUtnFEMI@bucket/prefix")
    assert "wJalrXUtnFEMI" not in str(plain.value)
    assert "s3://${AWS_ACCESS_KEY_ID}:${AWS_SECRET_ACCESS_KEY}@BUCKET/PREFIX" in str(plain.value)
    with pytest.raises(UsageError, match="unknown S3 option 'secret_key'"):
        open_blob_store("s3://bucket/p?secret_key=abc")
    with pytest.raises(UsageError, match="is not a folder URL; write file:///ABSOLUTE/PATH"):
        open_blob_store("file://relative/path")
    with pytest.raises(UsageError, match="'ftp' is not a store Kiln knows"):
        open_blob_store("ftp://host/x")
    secret_url = "s3://AKIAEXAMPLE:wJalrXUtnFEMI@bucket/prefix"
    where = ["--workspace", str(tmp_path / "ws")]
    cli = run_kiln("server", *where, "--artifacts", secret_url, check=False)
    assert cli.returncode == 2
    assert "holds credentials in plain text" in cli.stderr
    assert "wJalrXUtnFEMI" not in cli.stderr + cli.stdout
    assert not (tmp_path / "ws").exists()  # refused before anything was made


def test_an_unreachable_object_store_gets_one_line_and_the_server_stays_up(
    tmp_path: Path,
) -> None:
    closed = free_port()  # nothing listens there
    url = f"s3://kiln/p?endpoint_url=http://127.0.0.1:{closed}&region=us-east-1"
    keys = {"AWS_ACCESS_KEY_ID": "kiln-test", "AWS_SECRET_ACCESS_KEY": "kiln-test-only"}
    with team_server(tmp_path, artifacts=url, environment=keys) as team:
        answer = team.call("GET", f"{ART}/{_sha(b'x')}", team.admin_token)
        assert answer.status_code == 503
        assert answer.json()["detail"] == (
            "the artifact store s3://kiln/p/ failed (EndpointConnectionError); check the "
            "server's --artifacts URL, its credentials and that the store runs"
        )
        assert (
            team.call("PUT", f"{ART}/{_sha(b'x')}", team.admin_token, content=b"x").status_code
            == 503
        )
        assert team.up()


def test_store_credentials_may_be_variable_references(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "s3://${KILN_T_KEY}:${KILN_T_SECRET}@bucket/prefix?endpoint_url=http://127.0.0.1:9"
    monkeypatch.setenv("KILN_T_KEY", "the-key-id")
    monkeypatch.setenv("KILN_T_SECRET", "the-secret")
    store: Any = open_blob_store(url)
    credentials = store.client._request_signer._credentials
    assert (credentials.access_key, credentials.secret_key) == ("the-key-id", "the-secret")
    assert (store.bucket, store.prefix) == ("bucket", "prefix/")
    monkeypatch.delenv("KILN_T_SECRET")
    with pytest.raises(UsageError, match=r"\$\{KILN_T_SECRET\} is not set; export it"):
        open_blob_store(url)


def test_staging_files_of_a_dead_server_are_swept_when_the_store_opens(tmp_path: Path) -> None:
    from kiln.blobstores.filesystem import ABANDONED_AFTER, FileBlobStore

    staging = tmp_path / "artifacts" / "sha256"
    staging.mkdir(parents=True)
    abandoned, live = staging / ".incoming-dead", staging / ".incoming-live"
    abandoned.write_bytes(b"half an upload")
    live.write_bytes(b"an upload in progress")
    old = time.time() - ABANDONED_AFTER - 60
    os.utime(abandoned, (old, old))
    FileBlobStore(tmp_path / "artifacts")
    assert not abandoned.exists()
    assert live.exists()
