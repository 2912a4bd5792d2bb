"""The API reads what the CLI reads: lists with paging and filters, one version, locks,
builds, runs, models and deployments, each as its public schema; OpenAPI describes it."""

from __future__ import annotations

import json

from kilntesting.cli import run_kiln
from kilntesting.teamserver import Team

ENVS = "/api/v1/environments"


def _register(
    team: Team, token: str, name: str, package: str, tags: dict[str, str] | None = None
) -> None:
    definition = {
        "name": name,
        "tags": tags or {},
        "python": {"version": "3.11", "pip": {"packages": [package]}},
    }
    assert team.call("POST", ENVS, token, json=definition).status_code == 201


def test_environment_lists_page_and_filter(team: Team) -> None:
    token = team.token("lister", "contributor")
    for i in range(3):
        _register(team, token, f"paged-{i}", f"numpy==2.{i}.0", {"team": "a" if i else "b"})
    _register(team, token, "paged-0", "numpy==1.26.0", {"team": "b"})
    params = {"search": "paged-", "curated": False}
    first = team.call("GET", ENVS, token, params={**params, "limit": 2})
    assert first.headers["x-total-count"] == "3"
    assert [e["name"] for e in first.json()] == ["paged-0", "paged-1"]
    assert first.json()[0]["version"] == "2"  # the latest version only
    rest = team.call("GET", ENVS, token, params={**params, "limit": 2, "offset": 2})
    assert [e["name"] for e in rest.json()] == ["paged-2"]
    tagged = team.call("GET", ENVS, token, params={**params, "tag": "team=a"}).json()
    assert [e["name"] for e in tagged] == ["paged-1", "paged-2"]
    every = team.call("GET", ENVS, token, params={**params, "all_versions": True}).json()
    assert [(e["name"], e["version"]) for e in every][:2] == [("paged-0", "1"), ("paged-0", "2")]


def test_one_version_reads_as_env_show_json(team: Team) -> None:
    token = team.token("shower", "contributor")
    _register(team, token, "shown", "numpy==2.0.0")
    api = team.call("GET", f"{ENVS}/shown/versions/1", token).json()
    local = {
        **team.env,
        "KILN_WORKSPACE": str(team.root / ("server" if team.database_url else "ws")),
    }
    cli = json.loads(run_kiln("env", "show", "shown:1", "--json", env=local).stdout)
    assert api == cli
    assert team.call("GET", f"{ENVS}/shown", token).json() == cli
    missing = team.call("GET", f"{ENVS}/shown/versions/9", token)
    assert missing.status_code == 404
    # The server's folder is not the client's business: the message names the server instead.
    assert missing.json()["detail"].startswith(f"no environment shown:9 in {team.url}; ")
    assert str(team.root) not in missing.json()["detail"]


def test_builds_locks_runs_models_and_deployments(team: Team) -> None:
    token = team.token("viewer", "reader")
    _register(team, team.admin_token, "unbuilt", "numpy==2.0.0")
    version = f"{ENVS}/unbuilt/versions/1"
    assert team.call("GET", f"{version}/locks", token).json() == []
    assert team.call("GET", f"{version}/builds", token).json() == []
    log = team.call("GET", f"{version}/builds/latest/log", token)
    assert log.status_code == 404
    assert (
        log.json()["detail"] == "unbuilt:1 has not been built yet; run `kiln env build unbuilt:1`"
    )
    assert team.call("GET", "/api/v1/runs", token).json() == []
    assert team.call("GET", "/api/v1/runs/nope", token).status_code == 404
    assert team.call("GET", "/api/v1/models", token).json() == []
    assert team.call("GET", "/api/v1/models/m/versions/1", token).status_code == 404
    assert team.call("GET", "/api/v1/deployments", token).json() == []
    assert team.call("GET", "/api/v1/deployments/d", token).status_code == 404


def test_openapi_describes_the_api_with_the_public_schemas(team: Team) -> None:
    document = team.call("GET", "/api/v1/openapi.json").json()
    assert {"/api/v1/environments", "/api/v1/tokens", "/api/v1/audit"} <= set(document["paths"])
    assert {"EnvironmentVersion", "RegisteredVersion", "Run", "Model", "Deployment"} <= set(
        document["components"]["schemas"]
    )
