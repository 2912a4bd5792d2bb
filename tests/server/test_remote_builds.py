"""`kiln env build|lock|logs|show --build` with KILN_WORKSPACE=http://HOST:PORT: the client
resolves and builds on its own machine, the server keeps the one lock a team installs and every
attempt with its log, so a second machine installs the first one's lock without resolving."""

from __future__ import annotations

import json
from pathlib import Path

from kilntesting.builds import PackageIndex
from kilntesting.cli import run_kiln
from kilntesting.teamserver import Team


def _remote(team: Team, token: str, cache: Path) -> dict[str, str]:
    return {
        **team.env,
        "KILN_WORKSPACE": team.url,
        "KILN_TOKEN": token,
        "KILN_CACHE_DIR": str(cache),
    }


def _definition(tmp_path: Path, name: str, index: PackageIndex) -> Path:
    source = tmp_path / f"{name}.yml"
    source.write_text(
        f"name: {name}\npython:\n  version: '3.11'\n  pip:\n"
        f"    packages: [alpha==1.0]\n    index_url: {index.url}\n"
    )
    return source


def test_two_machines_share_one_lock_through_the_server(
    team: Team, tmp_path: Path, package_index: PackageIndex
) -> None:
    package_index.publish("alpha", "1.0")
    package_index.publish("alpha", "1.1")
    name = f"remote-build-{team.database_url is not None}"
    token = team.token("bea", "contributor")
    first = _remote(team, token, tmp_path / "machine-a")
    run_kiln("env", "register", "-f", str(_definition(tmp_path, name, package_index)), env=first)

    built = json.loads(run_kiln("env", "build", name, "--json", env=first).stdout)
    assert (built["built"], built["lock_generation"], built["packages"]) == (True, 1, 1)
    python = Path(built["interpreter"])
    assert python.is_file() and str(tmp_path / "machine-a") in str(python)

    # The server holds the lock, whole.
    stored = team.call("GET", f"/api/v1/builds/{built['build_hash']}/locks", token).json()
    assert [(s["generation"], s["lock_digest"]) for s in stored] == [(1, built["lock_digest"])]
    assert 'name = "alpha"' in stored[0]["text"] and 'version = "1.0"' in stored[0]["text"]

    # A second machine (another cache) installs that lock: generation 1, no second resolution.
    second = _remote(team, token, tmp_path / "machine-b")
    again = json.loads(run_kiln("env", "build", name, "--json", env=second).stdout)
    assert (again["built"], again["lock_generation"], again["lock_digest"]) == (
        True,
        1,
        built["lock_digest"],
    )
    attempts = team.call("GET", f"/api/v1/builds/{built['build_hash']}/attempts", token).json()
    assert [a["status"] for a in attempts] == ["succeeded", "succeeded"]
    logs = [
        team.call("GET", f"/api/v1/builds/{built['build_hash']}/logs/{a['log_digest']}", token)
        for a in attempts
    ]
    assert "==> resolve" not in logs[0].text, "the second machine resolved again"
    assert "==> resolve" in logs[1].text

    # Reads from a third place: the lock, the log and the build record come from the server.
    reader = _remote(team, team.token("rory", "reader"), tmp_path / "machine-c")
    lock = json.loads(run_kiln("env", "lock", name, "--json", env=second).stdout)
    assert (lock["generation"], lock["lock_digest"]) == (1, built["lock_digest"])
    logs = json.loads(run_kiln("env", "logs", name, "--json", env=reader).stdout)
    assert logs["status"] == "succeeded" and "==> succeeded" in logs["log"]
    assert run_kiln("env", "logs", name, env=reader).stdout.rstrip().endswith("==> succeeded")


def test_a_reader_cannot_build_and_a_tampered_lock_is_refused(
    team: Team, tmp_path: Path, package_index: PackageIndex
) -> None:
    package_index.publish("alpha", "1.0")
    name = f"remote-tamper-{team.database_url is not None}"
    token = team.token("tess", "contributor")
    writer = _remote(team, token, tmp_path / "a")
    run_kiln("env", "register", "-f", str(_definition(tmp_path, name, package_index)), env=writer)
    reader = _remote(team, team.token("rita", "reader"), tmp_path / "r")
    refused = run_kiln("env", "build", name, env=reader, check=False)
    assert refused.returncode == 4 and "reader" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1

    built = json.loads(run_kiln("env", "build", name, "--json", env=writer).stdout)
    # A teammate with database access edits the lock's text and leaves its digest alone.
    team.execute_sql(
        "UPDATE locks SET lock_text = replace(lock_text, '1.0', '9.9') WHERE build_hash = :h",
        h=built["build_hash"],
    )
    elsewhere = _remote(team, token, tmp_path / "b")
    tampered = run_kiln("env", "build", name, env=elsewhere, check=False)
    assert tampered.returncode != 0
    assert "changed after it was stored" in tampered.stderr and "--refresh" in tampered.stderr
    assert not (tmp_path / "b" / "envs").exists() or not any((tmp_path / "b" / "envs").iterdir())

    # Offered locks are checked too: a generation that exists is not replaced.
    offered = {
        "platform": built["platform"],
        "generation": 1,
        "format": "pylock",
        "resolver": "uv",
        "packages": [],
        "text": "forged",
    }
    path = f"/api/v1/builds/{built['build_hash']}/locks"
    answer = team.call("POST", path, token, json=offered)
    assert (answer.status_code, answer.json()) == (200, {"stored": False})
    assert team.call("POST", path, team.token("ron", "reader"), json=offered).status_code == 403
