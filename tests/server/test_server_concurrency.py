"""Sixteen clients register sixteen different definitions under one name at once: each gets
its own version, 1 to 16, none lost and none twice."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from kilntesting.teamserver import Team, team_server


def test_sixteen_concurrent_registers_get_versions_1_to_16(team: Team) -> None:
    _race(team)


def test_several_workers_on_postgresql_share_one_registry(
    tmp_path: Path, postgres_url: str
) -> None:
    with team_server(tmp_path, database_url=postgres_url, workers=3) as team:
        _race(team)


def _race(team: Team) -> None:
    token = team.token("racer", "contributor")

    def register(i: int) -> tuple[int, str]:
        definition = {
            "name": "race",
            "python": {"version": "3.11", "pip": {"packages": [f"numpy==2.{i}.0"]}},
        }
        answer = team.call("POST", "/api/v1/environments", token, json=definition)
        return answer.status_code, answer.json().get("version", answer.text)

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(register, range(16)))
    assert {status for status, _ in results} == {201}, results
    assert sorted(int(version) for _, version in results) == list(range(1, 17))
    listed = team.call(
        "GET", "/api/v1/environments", token, params={"search": "race", "all_versions": True}
    )
    assert [e["version"] for e in listed.json()] == [str(v) for v in range(1, 17)]
