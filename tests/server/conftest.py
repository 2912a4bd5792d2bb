"""One real team server per test module, on SQLite and on PostgreSQL: starting one costs
seconds, so the tests of a module share it and use names of their own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kilntesting.teamserver import Team, team_server


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def team(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Team]:
    url = request.getfixturevalue("module_postgres_url") if request.param == "postgres" else None
    with team_server(tmp_path_factory.mktemp("team"), database_url=url) as server:
        yield server
