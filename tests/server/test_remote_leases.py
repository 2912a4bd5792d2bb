"""Build leases through a team server: two client machines that build one materialization at
once resolve it once. The second waits for the first (the lease is the server's), then installs
the lock the first stored; a reader takes no lease; a lease is released when its build ends."""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from kilntesting.builds import PackageIndex, says_waiting, wait_for
from kilntesting.cli import run_kiln
from kilntesting.teamserver import Team

# The build's platform as Kiln names it (kiln.builders.interpreters): Python 3.11 here.
PLATFORM = f"{sys.platform}-{platform.machine().lower()}-cp311"


def _machine(team: Team, token: str, folder: Path) -> dict[str, str]:
    return {
        **team.env,
        "KILN_WORKSPACE": team.url,
        "KILN_TOKEN": token,
        "KILN_CACHE_DIR": str(folder / "cache"),
        "KILN_DATA_DIR": str(folder / "data"),
    }


def _build(name: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "kiln", "env", "build", name, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
        start_new_session=True,
    )


def _finished(process: subprocess.Popen[str]) -> tuple[dict[str, Any], str]:
    out, err = process.communicate(timeout=180)
    assert process.returncode == 0, err
    return json.loads(out), err


def test_two_clients_of_a_server_building_at_once_resolve_once(
    team: Team, tmp_path: Path, package_index: PackageIndex
) -> None:
    package_index.publish("lease-dep", "1.0")
    package_index.publish("leased", "1.0", requires=["lease-dep"])
    name = f"leased-{team.database_url is not None}"
    source = tmp_path / "leased.yml"
    source.write_text(
        f"name: {name}\npython:\n  version: '3.11'\n  pip:\n"
        f"    packages: [leased==1.0]\n    index_url: {package_index.url}\n"
    )
    token = team.token("lena", "contributor")
    a, b = (_machine(team, token, tmp_path / m) for m in ("a", "b"))
    run_kiln("env", "register", "-f", str(source), env=a)
    build_hash = json.loads(run_kiln("env", "show", name, "--json", env=a).stdout)["build_hash"]

    def lease() -> Any:
        answer = team.call(
            "GET",
            f"/api/v1/builds/{build_hash}/lease",
            token,
            params={"platform": PLATFORM, "builder": "venv"},
        )
        return answer.json()

    package_index.delay = (
        600.0  # held until the second waits (a loaded machine may take a minute to get there)
    )
    first = _build(name, {**a, "UV_HTTP_TIMEOUT": "900"})  # uv waits out the held index
    wait_for(lambda: lease() is not None, "the first build to take its lease on the server")
    assert lease()["pid"] == first.pid and lease()["host"] == socket.gethostname()
    second = _build(name, b)
    wait_for(lambda: says_waiting(tmp_path / "b" / "cache"), "the second build to wait", 300)
    package_index.delay = 0.0
    (built_a, _), (built_b, waited) = _finished(first), _finished(second)

    assert f"waiting for {socket.gethostname()} pid {first.pid}, which is building {name}:1" in (
        waited
    )
    assert built_a["lock_digest"] == built_b["lock_digest"]
    assert built_a["platform"] == PLATFORM
    attempts = team.call("GET", f"/api/v1/builds/{build_hash}/attempts", token).json()
    logs = [
        team.call("GET", f"/api/v1/builds/{build_hash}/logs/{t['log_digest']}", token).text
        for t in attempts
    ]
    resolved = ["==> resolve" in log for log in logs]
    assert sorted(resolved) == [False, True], "both machines resolved: the lease did not hold"
    assert lease() is None  # released when each build ended


def test_a_reader_cannot_take_a_lease(team: Team) -> None:
    token = team.token("rafe", "reader")
    body = {
        "platform": "linux-x86_64",
        "builder": "venv",
        "holder": "h" * 32,
        "host": "elsewhere",
        "pid": 1,
        "building": "x:1",
        "seconds": 60,
    }
    answer = team.call("POST", f"/api/v1/builds/{'0' * 64}/lease", token, json=body)
    assert answer.status_code == 403
    assert team.call("POST", f"/api/v1/builds/{'0' * 64}/lease", json=body).status_code == 401
