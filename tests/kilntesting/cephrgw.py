"""A real S3 server for the artifact store's tests: one Ceph node (a monitor, one in-memory OSD and
a RADOS Gateway) on 127.0.0.1 with free ports, in a folder of its own, stopped by the PIDs it
wrote. From Debian's packages (scripts/ceph.sh installs them); about 20 s to start.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from kilntesting.images import free_port, unavailable

BINARIES = ("ceph-mon", "ceph-osd", "ceph", "ceph-authtool", "monmaptool", "radosgw")


@dataclass(frozen=True)
class RadosGateway:
    endpoint: str  # http://127.0.0.1:PORT
    access_key: str
    secret_key: str

    def environment(self) -> dict[str, str]:
        """The standard AWS variables boto3 reads (never a URL: secrets stay out of it)."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def client(self) -> object:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(
                # Ceph 16 knows no flexible checksums: send none unless an operation needs one.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )


def _config(root: Path, fsid: str, mon_port: int, rgw_port: int, memory: int) -> str:
    return f"""[global]
fsid = {fsid}
mon host = v2:127.0.0.1:{mon_port}
mon initial members = a
keyring = {root}/keyring
osd pool default size = 1
osd pool default min size = 1
osd pool default pg autoscale mode = off
osd pool default pg num = 8
osd pool default pgp num = 8
mon allow pool size one = true
mon warn on pool no redundancy = false
mon data avail warn = 5
osd crush chooseleaf type = 0
public addr = 127.0.0.1
run dir = {root}/run
log file = {root}/log/$name.log
admin socket = {root}/run/$name.asok
pid file = {root}/run/$name.pid
client mount timeout = 20
[mon.a]
mon data = {root}/mon.a
[osd]
osd objectstore = memstore
memstore device bytes = {memory}
osd data = {root}/osd.$id
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:{rgw_port}
rgw data = {root}/rgw
# Deleted objects' data is freed within seconds, not hours: the OSD keeps it in memory.
rgw gc obj min wait = 5
rgw gc processor period = 5
"""


def _run(root: Path, *command: str, timeout: float = 60) -> str:
    env = {**os.environ, "CEPH_CONF": str(root / "ceph.conf")}
    done = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise AssertionError(
            f"{' '.join(command)} failed ({done.returncode}): {done.stderr[-2000:]}"
        )
    return done.stdout


# The keys of the node: (name, capabilities), as the recipe makes them.
KEYS = (
    ("mon.", "mon=allow *"),
    ("client.admin", "mon=allow * osd=allow * mgr=allow *"),
    ("osd.0", "mon=allow profile osd osd=allow *"),
    ("client.rgw.a", "mon=allow rw osd=allow rwx"),
)


def _keyring(root: Path) -> None:
    keyring = str(root / "keyring")
    for index, (name, capabilities) in enumerate(KEYS):
        caps = []
        for part in re.split(r" (?=\w+=)", capabilities):
            daemon, allowed = part.split("=", 1)
            caps += ["--cap", daemon, allowed]
        create = ["--create-keyring"] if index == 0 else []
        _run(root, "ceph-authtool", *create, keyring, "--gen-key", "-n", name, *caps)


# Each step as the recipe runs it; the daemons detach and write their PIDs to run/.
STEPS = (
    "ceph-mon --mkfs -i a --monmap {root}/monmap --keyring {root}/keyring",
    "ceph-mon -i a",
    "ceph osd create",
    "ceph-osd -i 0 --mkfs",
    "ceph osd crush add-bucket localhost host",
    "ceph osd crush move localhost root=default",
    "ceph osd crush add osd.0 1.0 host=localhost",
    "ceph-osd -i 0",
    "radosgw -n client.rgw.a",
)


def _start(root: Path, mon_port: int, rgw_port: int, memory: int) -> None:
    for folder in ("mon.a", "osd.0", "run", "log", "rgw"):
        (root / folder).mkdir(parents=True)
    fsid = str(uuid.uuid4())
    (root / "ceph.conf").write_text(_config(root, fsid, mon_port, rgw_port, memory))
    _keyring(root)
    address = f"[v2:127.0.0.1:{mon_port}]"
    _run(root, "monmaptool", "--create", "--fsid", fsid, "--addv", "a", address, f"{root}/monmap")
    for step in STEPS:
        _run(root, *step.format(root=root).split())


def _wait_gateway(root: Path, endpoint: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(endpoint, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    logs = "\n".join(p.read_text()[-1500:] for p in sorted((root / "log").glob("*.log")))
    raise AssertionError(f"the RADOS Gateway at {endpoint} did not answer in 90 s:\n{logs}")


def _stop(root: Path) -> None:
    """Kill exactly the daemons this node started (their PID files), then wait for them."""
    pids = []
    for pid_file in (root / "run").glob("*.pid"):
        try:
            pid = int(pid_file.read_text().strip())
            os.kill(pid, signal.SIGTERM)
            pids.append(pid)
        except (ValueError, ProcessLookupError, FileNotFoundError):
            continue
    deadline = time.monotonic() + 15
    for pid in pids:
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            time.sleep(0.1)
        if Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)


@contextmanager
def rados_gateway(root: Path, *, memory: int = 1024**3) -> Iterator[RadosGateway]:
    """One Ceph node with an S3 user, yielded as its endpoint and keys; its OSD keeps objects
    in ``memory`` bytes at most (allocated as used)."""
    missing = [name for name in BINARIES if shutil.which(name) is None]
    if missing:
        unavailable(f"no Ceph ({', '.join(missing)} missing): run scripts/ceph.sh")
    rgw_port = free_port()
    endpoint = f"http://127.0.0.1:{rgw_port}"
    try:
        _start(root, free_port(), rgw_port, memory)
        _wait_gateway(root, endpoint)
        made = _run(
            root, "radosgw-admin", "user", "create", "--uid=kiln-test", "--display-name=kiln test"
        )
        keys = json.loads(made)["keys"][0]
        yield RadosGateway(endpoint, keys["access_key"], keys["secret_key"])
    finally:
        _stop(root)
