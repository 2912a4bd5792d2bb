"""Bad requests get a 4xx with one line (the CLI's own message for the same mistake), nothing
is written, and the server stays up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from kilntesting.cli import run_kiln
from kilntesting.teamserver import Team

ENVS = "/api/v1/environments"


def test_an_invalid_definition_gets_the_cli_message(team: Team, tmp_path: Path) -> None:
    definition = {
        "name": "badpins",
        "python": {"version": "3.11", "pip": {"packages": ["numpy==="]}},
    }
    answer = team.call("POST", ENVS, team.admin_token, json=definition)
    assert answer.status_code == 422
    source = tmp_path / "kiln.yml"
    source.write_text(str(definition).replace("'", '"'))  # JSON is YAML
    cli = run_kiln("-w", str(tmp_path), "env", "register", "-f", str(source), check=False)
    assert cli.returncode == 2
    cli_message = cli.stderr.strip().removeprefix("kiln: error: ")
    assert answer.json()["detail"] == cli_message.replace(str(source), "the request body")
    assert team.call("GET", f"{ENVS}/badpins", team.admin_token).status_code == 404


def test_malformed_requests_get_422_with_one_line(team: Team) -> None:
    token = team.admin_token
    cases = [
        team.call(
            "POST", ENVS, token, content=b"{not json", headers={"content-type": "application/json"}
        ),
        team.call("POST", ENVS, token, json=["a", "list"]),
        team.call("GET", ENVS, token, params={"limit": "many"}),
        team.call("POST", f"{ENVS}/x/versions/1/tags", token, json={"add": {"a": 1}, "extra": 1}),
        team.call("POST", "/api/v1/tokens", token, json={"owner": "bad name!", "role": "reader"}),
        team.call("POST", "/api/v1/tokens", token, json={"owner": "newbie", "role": "root"}),
    ]
    for answer in cases:
        assert answer.status_code == 422, answer.text
        detail = answer.json()["detail"]
        assert isinstance(detail, str) and "\n" not in detail
    assert "not valid JSON" in cases[0].json()["detail"]
    assert "`role`" in cases[5].json()["detail"]
    assert team.up()


def test_oversized_bodies_get_413_and_the_server_stays_up(team: Team) -> None:
    big = b"x" * (5 * 1024 * 1024)
    declared = team.call("POST", ENVS, team.admin_token, content=big)
    assert declared.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the server counts as it reads
        for _ in range(80):
            yield b" " * 65536

    streamed = team.call("POST", ENVS, team.admin_token, content=chunks())
    assert streamed.status_code == 413
    assert "over 4 MiB" in streamed.json()["detail"]
    assert team.up()
    small = {"name": "after-413", "python": {"version": "3.11"}}
    assert team.call("POST", ENVS, team.admin_token, json=small).status_code == 201


def test_curated_names_and_local_files_are_refused(team: Team) -> None:
    curated = {"name": "Kiln-mine", "python": {"version": "3.11"}}
    assert team.call("POST", ENVS, team.admin_token, json=curated).status_code == 403
    local = {"name": "localfiles", "python": {"version": "3.11", "pip": {"packages": ["./pkg"]}}}
    answer = team.call("POST", ENVS, team.admin_token, json=local)
    assert answer.status_code == 422
    assert "`python.pip.file_digests` must name the sha256" in answer.json()["detail"]
