"""Artifact transfer benchmark (issue 12 items 5 and 9): one file of ``--mb`` MB (default 200)
uploaded and downloaded

- through the server, its store on the file system (``PUT``/``GET /api/v1/artifacts/...``);
- through the server, its store in S3 (the server streams to and from the bucket);
- through presigned URLs (``kiln.remoteartifacts``: the server hands out URLs, checks the
  upload's sha256 when it is committed, the client checks the download's);
- with boto3 talking to the same bucket directly (no hashing, no server): the reference.

Each client operation includes what Kiln's client does (hashing the file before an upload,
hashing while downloading). The S3 server is a one-node Ceph RGW on loopback with an in-memory
OSD (tests/kilntesting/cephrgw.py), the team server a real ``kiln server`` subprocess. Rounds
are interleaved; the table gives median MB/s and the ratio to boto3. Progress on stderr.
Run: ``PYTHONPATH=src:tests python bench/artifacts.py [--mb 200] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kiln.httpclient import ServerClient, streamed
from kiln.remoteartifacts import download, upload
from kilntesting.cephrgw import RadosGateway, rados_gateway
from kilntesting.teamserver import Team, team_server

BUCKET = "kiln-bench"
PREFIX = "team"


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _put_through_server(team: Team, token: str, source: Path) -> None:
    """The direct route even when the store offers URLs: what a client without S3 access does."""
    client = ServerClient(team.url, token)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()

    def chunks() -> Any:
        with source.open("rb") as data:
            while chunk := data.read(1024 * 1024):
                yield chunk

    headers = {**client.auth_headers(), "Content-Length": str(source.stat().st_size)}
    with streamed("PUT", client.api_url(f"/artifacts/{digest}"), headers=headers, content=chunks()):
        pass


def _get_through_server(team: Team, token: str, digest: str, destination: Path) -> None:
    client = ServerClient(team.url, token)
    hasher = hashlib.sha256()
    with (
        streamed(
            "GET", client.api_url(f"/artifacts/{digest}"), headers=client.auth_headers()
        ) as answer,
        destination.open("wb") as out,
    ):
        for chunk in answer.iter_bytes(1024 * 1024):
            hasher.update(chunk)
            out.write(chunk)
    assert hasher.hexdigest() == digest


Transfer = Callable[[Path, str, Path], tuple[float, float]]  # source, sha256, copy -> seconds


def _ways(file_team: Team, s3_team: Team, rgw: RadosGateway, s3: Any) -> dict[str, Transfer]:
    file_token = file_team.token("bench", "contributor")
    s3_token = s3_team.token("bench", "contributor")

    def through(team: Team, token: str) -> Transfer:
        def transfer(source: Path, digest: str, copy: Path) -> tuple[float, float]:
            up = _timed(lambda: _put_through_server(team, token, source))
            return up, _timed(lambda: _get_through_server(team, token, digest, copy))

        return transfer

    def presigned(source: Path, digest: str, copy: Path) -> tuple[float, float]:
        client = ServerClient(s3_team.url, s3_token)
        up = _timed(lambda: upload(client, source))
        return up, _timed(lambda: download(client, digest, copy))

    def direct(source: Path, digest: str, copy: Path) -> tuple[float, float]:
        key = f"{PREFIX}/sha256/{digest}"
        up = _timed(lambda: s3.upload_file(str(source), BUCKET, key))
        return up, _timed(lambda: s3.download_file(BUCKET, key, str(copy)))

    return {
        "server, file store": through(file_team, file_token),
        "server, S3 store": through(s3_team, s3_token),
        "presigned URLs": presigned,
        "boto3 direct": direct,
    }


def _round(
    work: Path, mb: int, ways: dict[str, Transfer], s3: Any
) -> dict[str, tuple[float, float]]:
    """One upload and one download per way, each of fresh bytes; seconds each."""
    results = {}
    for way, transfer in ways.items():
        source, copy = work / "source.bin", work / "copy.bin"
        source.write_bytes(os.urandom(mb * 1024 * 1024))
        digest = hashlib.sha256(source.read_bytes()).hexdigest()
        copy.unlink(missing_ok=True)
        results[way] = transfer(source, digest, copy)
        assert copy.stat().st_size == mb * 1024 * 1024
        s3.delete_object(
            Bucket=BUCKET, Key=f"{PREFIX}/sha256/{digest}"
        )  # the OSD keeps it in memory
        up, down = results[way]
        print(f"  {way}: up {up:.2f} s, down {down:.2f} s", file=sys.stderr)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kiln-bench-artifacts-") as folder:
        work = Path(folder)
        memory = max(2, args.mb * 6 // 1024 + 1) * 1024**3
        with rados_gateway(work / "ceph", memory=memory) as rgw:
            rgw.client().create_bucket(Bucket=BUCKET)  # type: ignore[attr-defined]
            url = f"s3://{BUCKET}/{PREFIX}?endpoint_url={rgw.endpoint}&region=us-east-1"
            with (
                team_server(work / "file") as file_team,
                team_server(work / "s3", artifacts=url, environment=rgw.environment()) as s3_team,
            ):
                s3: Any = rgw.client()
                ways = _ways(file_team, s3_team, rgw, s3)
                rounds = []
                for number in range(args.rounds):
                    print(f"round {number + 1}/{args.rounds}", file=sys.stderr)
                    rounds.append(_round(work, args.mb, ways, s3))
    _print_table(rounds, args.mb)


def _print_table(rounds: list[dict[str, tuple[float, float]]], mb: int) -> None:
    def rate(way: str, index: int) -> float:
        return mb / statistics.median(r[way][index] for r in rounds)

    print(f"{mb} MB, median of {len(rounds)} interleaved rounds, load {os.getloadavg()[0]:.2f}")
    print("| way | upload MB/s | download MB/s | upload vs boto3 | download vs boto3 |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for way in rounds[0]:
        up, down = rate(way, 0), rate(way, 1)
        ratio_up, ratio_down = up / rate("boto3 direct", 0), down / rate("boto3 direct", 1)
        print(f"| {way} | {up:.0f} | {down:.0f} | {ratio_up:.2f} | {ratio_down:.2f} |")


if __name__ == "__main__":
    main()
