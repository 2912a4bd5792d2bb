"""The workspace's own wheels on a team server (``kiln wheel add|list`` with
KILN_WORKSPACE=http://HOST:PORT): the file goes to the server's artifact store, the server checks
the stored bytes are a wheel and records it, and any machine registers ``wheel:FILENAME`` and
builds it from there."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from kiln.httpclient import ServerClient
from kiln.remoteartifacts import upload
from kilntesting.builds import PackageIndex, make_wheel
from kilntesting.cli import run_kiln
from kilntesting.teamserver import Team

WHEEL = "sharedwheel-1.0-py3-none-any.whl"


def test_a_wheel_added_on_one_machine_is_built_on_another(
    team: Team, tmp_path: Path, package_index: PackageIndex
) -> None:
    made = make_wheel(tmp_path / "made", "sharedwheel", "1.0", body="ANSWER = 11")
    token = team.token(f"whee-{team.database_url is not None}", "contributor")
    first = team.machine(token, tmp_path / "a", tmp_path / "a-cache")
    added = json.loads(run_kiln("wheel", "add", str(made), "--json", env=first).stdout)
    assert (added["filename"], added["added"], added["entry"]) == (WHEEL, True, f"wheel:{WHEEL}")
    again = json.loads(run_kiln("wheel", "add", str(made), "--json", env=first).stdout)
    assert again["added"] is False and again["sha256"] == added["sha256"]

    second = team.machine(token, tmp_path / "b", tmp_path / "b-cache")
    listed = json.loads(run_kiln("wheel", "list", "--json", env=second).stdout)
    assert [w["filename"] for w in listed] == [WHEEL]
    source = tmp_path / "named.yml"
    name = f"wheeled-{team.database_url is not None}"
    source.write_text(
        f"name: {name}\npython:\n  version: '3.11'\n  pip:\n"
        f"    index_url: {package_index.url}\n    packages: ['wheel:{WHEEL}']\n"
    )
    run_kiln("env", "register", "-f", str(source), env=second)
    built = json.loads(run_kiln("env", "build", name, "--json", env=second).stdout)
    answer = subprocess.run(
        [built["interpreter"], "-c", "import sharedwheel; print(sharedwheel.ANSWER)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert answer.stdout.strip() == "11"
    audit = team.call("GET", "/api/v1/audit?limit=50", team.admin_token).json()
    assert [e["object"] for e in audit if e["action"] == "wheel.add"] == [WHEEL]


def test_wheels_a_server_refuses(team: Team, tmp_path: Path) -> None:
    reader = team.machine(team.token("wheel-reader", "reader"), tmp_path / "r", tmp_path / "rc")
    made = make_wheel(tmp_path / "made", "readonly", "1.0")
    refused = run_kiln("wheel", "add", str(made), env=reader, check=False)
    assert refused.returncode == 4 and "wheel-reader is a reader" in refused.stderr

    token = team.token("wheel-writer", "contributor")
    client = ServerClient(team.url, token)
    fake = tmp_path / "fake-1.0-py3-none-any.whl"
    fake.write_bytes(b"not a zip at all")
    digest = upload(client, fake)  # stored as bytes, but not a wheel
    body = {"filename": fake.name, "sha256": digest}
    answer = team.call("POST", "/api/v1/wheels", token, json=body)
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith(f"{fake.name} is not a wheel: not a zip archive")
    unknown = {"filename": fake.name, "sha256": "0" * 64}
    answer = team.call("POST", "/api/v1/wheels", token, json=unknown)
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("`sha256`: the server's artifact store does not hold")
    sneaky = {"filename": "../x-1.0-py3-none-any.whl", "sha256": digest}
    assert team.call("POST", "/api/v1/wheels", token, json=sneaky).status_code == 422
    listed = team.call("GET", "/api/v1/wheels", token).json()
    assert fake.name not in [w["filename"] for w in listed]
