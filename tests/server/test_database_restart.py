"""The registry's PostgreSQL restarting under load: requests made while it is down fail
cleanly (503 with one line and Retry-After, quickly, no other 5xx), the server stays up, and
requests succeed again once the database is back, with no version lost or made twice."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kilntesting.pgcluster import PrivatePostgres, private_postgres
from kilntesting.teamserver import Team, team_server


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[tuple[Team, PrivatePostgres]]:
    with (
        private_postgres() as database,
        team_server(tmp_path / "team", database_url=database.url, workers=2) as team,
    ):
        yield team, database


def test_a_database_restart_under_load_fails_cleanly_and_recovers(
    restartable: tuple[Team, PrivatePostgres],
) -> None:
    team, database = restartable
    token = team.token("lou", "contributor")
    headers = {"Authorization": f"Bearer {token}"}
    statuses: Counter[int] = Counter()
    created: list[str] = []
    slowest = [0.0]
    stop = threading.Event()
    refusals: set[str] = set()

    def client(number: int) -> None:
        with httpx.Client(base_url=f"{team.url}/api/v1", headers=headers, timeout=30) as http:
            sequence = 0
            while not stop.is_set():
                sequence += 1
                began = time.monotonic()
                if number % 2:
                    body = {"name": "under-load", "description": f"{number}-{sequence}"}
                    answer = http.post(
                        "/environments", json={**body, "python": {"version": "3.11"}}
                    )
                else:
                    answer = http.get("/environments", params={"limit": 5})
                slowest[0] = max(slowest[0], time.monotonic() - began)
                statuses[answer.status_code] += 1
                if answer.status_code == 201:
                    created.append(answer.json()["version"])
                elif answer.status_code == 503:
                    assert answer.headers["retry-after"] == "2"
                    refusals.add(answer.json()["detail"])

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    database.stop()
    time.sleep(2)
    database.start()
    time.sleep(2)
    before_recovery = Counter(statuses)
    time.sleep(1.5)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)

    assert team.up()
    assert statuses[503] > 0, "the clients never met the restart"
    assert set(statuses) <= {200, 201, 503}, statuses
    assert refusals == {"the server's registry database is not reachable right now; retry shortly"}
    assert slowest[0] < 30
    # Requests succeed again after the restart, and versions stay unique and consecutive.
    assert statuses[200] + statuses[201] > before_recovery[200] + before_recovery[201]
    versions = sorted(int(v) for v in created)
    assert versions == list(range(1, len(versions) + 1))
    listed = team.call(
        "GET", "/api/v1/environments", token, params={"all_versions": True, "search": "under-load"}
    )
    assert listed.status_code == 200
    assert sorted(int(v["version"]) for v in listed.json()) == versions
