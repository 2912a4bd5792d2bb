"""The shared artifact store in a real S3 server (Ceph's RADOS Gateway, one node on loopback,
started once per test session): presigned uploads are checked by the server before they are
visible, presigned downloads are checked by the client, and the object store's own copy is
never trusted blindly."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kiln.artifacts import DigestMismatch
from kiln.httpclient import ServerClient
from kiln.remoteartifacts import download, upload
from kilntesting.builds import PackageIndex, make_wheel
from kilntesting.cephrgw import RadosGateway, rados_gateway
from kilntesting.cli import run_kiln
from kilntesting.runs import write_script
from kilntesting.teamserver import Team, team_server
from kilntesting.weblogin import form_token, logged_in

ART = "/api/v1/artifacts"
BUCKET = "kiln-artifacts"
PREFIX = "team"


@pytest.fixture(scope="session")
def rgw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadosGateway]:
    with rados_gateway(tmp_path_factory.mktemp("ceph")) as gateway:
        gateway.client().create_bucket(Bucket=BUCKET)  # type: ignore[attr-defined]
        yield gateway


@pytest.fixture(scope="module")
def team(rgw: RadosGateway, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Team]:
    url = f"s3://{BUCKET}/{PREFIX}?endpoint_url={rgw.endpoint}&region=us-east-1"
    root = tmp_path_factory.mktemp("s3team")
    environment = {**rgw.environment(), "KILN_CACHE_DIR": str(root / "server-cache")}
    with team_server(root, artifacts=url, environment=environment) as server:
        yield server


def _keys(rgw: RadosGateway, under: str) -> list[str]:
    listed: Any = rgw.client().list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/{under}")  # type: ignore[attr-defined]
    return [item["Key"] for item in listed.get("Contents", [])]


def test_presigned_upload_commit_and_download(
    team: Team, rgw: RadosGateway, tmp_path: Path
) -> None:
    client = ServerClient(team.url, team.token("s3maker", "contributor"))
    data = os.urandom(9 * 1024 * 1024)
    digest = hashlib.sha256(data).hexdigest()
    offer = team.call("POST", f"{ART}/{digest}/upload-url", client.token).json()
    assert offer["url"].startswith(f"{rgw.endpoint}/{BUCKET}/{PREFIX}/incoming/")
    assert client.token not in offer["url"]
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in offer["url"]  # SigV4, as AWS requires

    assert upload(client, data) == digest
    assert _keys(rgw, "sha256/") == [f"{PREFIX}/sha256/{digest}"]
    assert _keys(rgw, "incoming/") == []  # the staging objects are gone
    again = team.call("POST", f"{ART}/{digest}/upload-url", client.token).json()
    assert again["exists"] is True and again["url"] is None

    offer = team.call("GET", f"{ART}/{digest}/download-url", client.token).json()
    assert offer["url"].startswith(f"{rgw.endpoint}/{BUCKET}/{PREFIX}/sha256/{digest}?")
    assert httpx.get(offer["url"]).content == data  # no token needed, nor sent
    destination = tmp_path / "model.bin"
    assert download(client, digest, destination).read_bytes() == data


def test_a_presigned_upload_of_other_bytes_is_not_committed(team: Team, rgw: RadosGateway) -> None:
    token = team.token("s3liar", "contributor")
    claimed = hashlib.sha256(b"the bytes promised").hexdigest()
    offer = team.call("POST", f"{ART}/{claimed}/upload-url", token).json()
    assert httpx.put(offer["url"], content=b"other bytes sent").status_code == 200
    commit = team.call(
        "POST", f"{ART}/{claimed}/commit", token, json={"upload_id": offer["upload_id"]}
    )
    assert commit.status_code == 400
    assert f"does not match sha256 {claimed}" in commit.json()["detail"]
    assert team.call("HEAD", f"{ART}/{claimed}", token).status_code == 404
    assert _keys(rgw, "incoming/") == []
    never = team.call("POST", f"{ART}/{claimed}/commit", token, json={"upload_id": "f" * 32})
    assert never.status_code == 404
    assert "nothing was uploaded for upload id" in never.json()["detail"]


def test_an_object_tampered_in_the_bucket_is_caught_by_the_client(
    team: Team, rgw: RadosGateway, tmp_path: Path
) -> None:
    client = ServerClient(team.url, team.token("s3victim", "contributor"))
    digest = upload(client, b"the weights as trained")
    s3: Any = rgw.client()
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/sha256/{digest}", Body=b"the weights, poisoned")
    destination = tmp_path / "weights.bin"
    with pytest.raises(DigestMismatch, match=f"does not match sha256 {digest}"):
        download(client, digest, destination)
    assert not destination.exists()
    assert list(tmp_path.iterdir()) == []


def test_an_upload_cut_off_midway_leaves_nothing_in_the_bucket(
    team: Team, rgw: RadosGateway
) -> None:
    """Past boto3's multipart threshold: parts reach the bucket before the client goes away."""
    token = team.token("s3cutter", "contributor")
    whole = os.urandom(24 * 1024 * 1024)
    digest = hashlib.sha256(whole).hexdigest()
    team.send_cut_off(f"{ART}/{digest}", token, len(whole), whole[: 18 * 1024 * 1024])
    s3: Any = rgw.client()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        pending = s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
        if not pending and not _keys(rgw, "incoming/"):
            break
        time.sleep(0.2)
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []
    assert _keys(rgw, "incoming/") == []
    assert team.call("HEAD", f"{ART}/{digest}", token).status_code == 404
    assert team.up()


def test_streaming_through_the_server_works_on_s3_too(team: Team, rgw: RadosGateway) -> None:
    token = team.token("s3streamer", "contributor")
    data = os.urandom(5 * 1024 * 1024)
    digest = hashlib.sha256(data).hexdigest()
    wrong = team.call("PUT", f"{ART}/{'0' * 64}", token, content=data)
    assert wrong.status_code == 400
    assert team.call("PUT", f"{ART}/{digest}", token, content=data).status_code == 201
    assert team.call("GET", f"{ART}/{digest}", token).content == data
    assert _keys(rgw, "incoming/") == []
    assert f"{PREFIX}/sha256/{'0' * 64}" not in _keys(rgw, "sha256/")


def test_bytes_put_again_during_a_commit_are_not_what_is_published(
    rgw: RadosGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client may PUT to its presigned URL again while the server checks the first bytes:
    the commit checks and publishes a copy no URL names, so the swap changes nothing. Driven
    at the store's two steps, since the race cannot be timed through the server."""
    from kiln.blobstores import open_blob_store
    from kiln.blobstores.s3 import S3BlobStore

    url = f"s3://{BUCKET}/race?endpoint_url={rgw.endpoint}&region=us-east-1"
    for name, value in rgw.environment().items():
        monkeypatch.setenv(name, value)
    store = open_blob_store(url)
    assert isinstance(store, S3BlobStore)
    checked = b"the bytes the server checked"
    digest = hashlib.sha256(checked).hexdigest()
    offer = store.upload_url(digest, expires_in=60)
    assert offer is not None
    httpx.put(offer.url, content=checked).raise_for_status()
    snapshot = store._snapshot(offer.upload_id)
    httpx.put(offer.url, content=b"bytes swapped in afterwards").raise_for_status()
    store._check_and_publish(snapshot, digest)
    assert store.open(digest).read() == checked
    s3: Any = rgw.client()
    leftovers = s3.list_objects_v2(Bucket=BUCKET, Prefix="race/incoming/").get("Contents", [])
    # Only the swapped-in bytes remain, at the staging key no reader looks at.
    assert [item["Key"] for item in leftovers] == [f"race/incoming/{offer.upload_id}"]


def test_the_store_secret_never_leaves_the_server(team: Team, rgw: RadosGateway) -> None:
    """Presigned URLs carry a signature and the key's id, never the secret; nor does the log."""
    token = team.token("s3auditor", "contributor")
    digest = upload(ServerClient(team.url, token), b"audited bytes")
    team.call("GET", f"{ART}/{digest}/download-url", token)
    assert team.responses
    for text in [*team.responses, team.log.read_text()]:
        assert rgw.secret_key not in text


def test_a_runs_files_and_a_model_go_through_the_bucket(
    team: Team, rgw: RadosGateway, tmp_path: Path, shared_cache: Path
) -> None:
    """A run on machine A, its outputs downloaded and its snapshot reproduced on machine B, and
    a folder model registered on A and downloaded on B: every byte through presigned URLs."""
    token = team.token("s3runner", "contributor")
    a = team.machine(token, tmp_path / "a", shared_cache)
    write_script(
        tmp_path / "src",
        "train.py",
        "import os\nos.makedirs('outputs', exist_ok=True)\n"
        "open('outputs/w.bin', 'wb').write(open('data.bin', 'rb').read()[::-1])\n",
    )
    data = os.urandom(2 * 1024 * 1024)
    (tmp_path / "src" / "data.bin").write_bytes(data)
    submit = ["run", "submit", "-d", str(tmp_path / "src"), "-e", "s3-runs", "--json", "train.py"]
    made = json.loads(run_kiln(*submit, env=a).stdout)
    assert made["status"] == "Completed"
    assert f"{PREFIX}/sha256/{hashlib.sha256(data).hexdigest()}" in _keys(rgw, "sha256/")
    # The web UI, on the server host whose own folder never held the outputs, serves them.
    page = logged_in(team.url, token).get(f"/runs/{made['id']}/files/outputs/w.bin")
    assert page.status_code == 200 and page.content == data[::-1]
    b = team.machine(token, tmp_path / "b", shared_cache)
    run_kiln("run", "download", made["id"], "-d", str(tmp_path / "out"), env=b)
    assert (tmp_path / "out" / "outputs" / "w.bin").read_bytes() == data[::-1]
    again = json.loads(run_kiln("run", "reproduce", made["id"], "--json", env=b).stdout)
    assert (again["status"], again["reproduces"]) == ("Completed", made["id"])
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(data)
    run_kiln("model", "register", "-n", "s3-model", "-p", str(model), env=a)
    run_kiln("model", "download", "s3-model:1", "-d", str(tmp_path / "got"), env=b)
    assert (tmp_path / "got" / "model" / "weights.bin").read_bytes() == data
    assert _keys(rgw, "incoming/") == []


def test_the_web_ui_rebuilds_a_wheel_a_member_uploaded_to_the_bucket(
    team: Team, rgw: RadosGateway, tmp_path: Path, package_index: PackageIndex
) -> None:
    """The server host's own build (Rebuild) takes the wheel from the bucket, where the member's
    register put it, not from the server's folder, which never held it."""
    source = tmp_path / "source"
    source.mkdir()
    made = make_wheel(tmp_path / "made", "bucketed", "1.0", body="ANSWER = 7")
    wheel = source / made.name
    wheel.write_bytes(made.read_bytes())
    (source / "kiln.yaml").write_text(
        f"name: s3-rebuilt\npython:\n  version: '3.11'\n  pip:\n"
        f"    index_url: {package_index.url}\n    packages: [./{made.name}]\n"
    )
    token = team.token("s3builder", "contributor")
    member = team.machine(token, tmp_path / "member", tmp_path / "member-cache")
    run_kiln("env", "register", "-f", str(source / "kiln.yaml"), env=member)
    digest = hashlib.sha256(made.read_bytes()).hexdigest()
    assert f"{PREFIX}/sha256/{digest}" in _keys(rgw, "sha256/")

    client = logged_in(team.url, token)
    page = client.get("/environments/s3-rebuilt/versions/1")
    asked = client.post(
        "/environments/s3-rebuilt/versions/1/build", data={"csrf": form_token(page.text)}
    )
    assert asked.status_code == 303
    events = client.get("/environments/s3-rebuilt/versions/1/build/events", timeout=300).text
    assert "build succeeded" in events, events
    builds = team.call("GET", "/api/v1/environments/s3-rebuilt/versions/1/builds", token).json()
    assert [b["status"] for b in builds] == ["succeeded"]  # the server host's, the only one
