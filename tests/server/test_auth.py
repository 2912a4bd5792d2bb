"""Who may do what on a real server: 401 without a valid token, 403 for a reader's write and
for a contributor changing what someone else made; admins change anything."""

from __future__ import annotations

import datetime as dt
import json
import time

import httpx

from kiln.server.auth import TOKEN_CACHE_SECONDS
from kilntesting.cli import run_kiln
from kilntesting.teamserver import Team

ENVS = "/api/v1/environments"


def _definition(name: str, package: str = "numpy==2.0.0") -> dict[str, object]:
    return {"name": name, "python": {"version": "3.11", "pip": {"packages": [package]}}}


def _refused_within(team: Team, token: str, seconds: float) -> httpx.Response:
    """The first 401 for ``token``, asked every 0.1 s; fails when the token still works after
    ``seconds`` (and a margin for a slow machine)."""
    started = time.monotonic()
    while True:
        answer = team.call("GET", "/api/v1/whoami", token)
        waited = time.monotonic() - started
        if answer.status_code == 401:
            return answer
        assert answer.status_code == 200, answer.text
        assert waited < seconds + 2, f"the token still works {waited:.1f} s later"
        time.sleep(0.1)


def test_requests_without_a_valid_token_get_401(team: Team) -> None:
    assert team.call("GET", "/healthz").status_code == 200  # liveness needs no token
    for token in (None, "kiln_" + "x" * 43, "not-a-token"):
        answer = team.call("GET", ENVS, token)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == "Bearer"
        assert "\n" not in answer.json()["detail"]
    assert team.call("POST", ENVS, None, json=_definition("x")).status_code == 401
    assert team.call("GET", ENVS, team.admin_token).status_code == 200


def test_a_reader_reads_but_every_write_is_403(team: Team) -> None:
    reader = team.token("rita", "reader")
    assert team.call("GET", "/api/v1/whoami", reader).json() == {"name": "rita", "role": "reader"}
    assert team.call("POST", ENVS, team.admin_token, json=_definition("shared")).status_code == 201
    assert team.call("GET", f"{ENVS}/shared", reader).json()["version"] == "1"
    writes = [
        ("POST", ENVS, {"json": _definition("mine")}),
        ("POST", f"{ENVS}/shared/archive", {}),
        ("POST", f"{ENVS}/shared/versions/1/tags", {"json": {"add": {"a": "b"}}}),
        ("GET", "/api/v1/audit", {}),
    ]
    for method, path, kwargs in writes:
        answer = team.call(method, path, reader, **kwargs)
        assert answer.status_code == 403, (path, answer.text)
        assert "rita is a reader" in answer.json()["detail"]
    assert team.call("GET", f"{ENVS}/mine", reader).status_code == 404  # nothing was written


def test_contributors_change_only_what_they_created(team: Team) -> None:
    ann, bob = team.token("ann", "contributor"), team.token("bob", "contributor")
    assert team.call("POST", ENVS, ann, json=_definition("anns")).status_code == 201
    refused = team.call("POST", f"{ENVS}/anns/archive", bob, params={"version": "1"})
    assert refused.status_code == 403
    assert "created by someone else" in refused.json()["detail"]
    tag = {"json": {"add": {"stage": "prod"}}}
    assert team.call("POST", f"{ENVS}/anns/versions/1/tags", bob, **tag).status_code == 403
    assert team.call("POST", f"{ENVS}/anns/versions/1/tags", ann, **tag).status_code == 200
    # bob may add a version of the name, but archiving the whole name touches ann's too
    assert team.call("POST", ENVS, bob, json=_definition("anns", "numpy==2.1.0")).status_code == 201
    assert team.call("POST", f"{ENVS}/anns/archive", bob).status_code == 403
    assert (
        team.call("POST", f"{ENVS}/anns/archive", bob, params={"version": "2"}).status_code == 200
    )
    archived = team.call("POST", f"{ENVS}/anns/archive", team.admin_token)  # admins: anything
    assert archived.status_code == 200
    assert archived.json()["versions_changed"] == 2


def test_only_admins_make_tokens_for_others_and_a_revoked_token_is_401(team: Team) -> None:
    carl = team.token("carl", "contributor")
    for body in ({"owner": "dora", "role": "reader"}, {"owner": "carl", "role": "admin"}):
        assert team.call("POST", "/api/v1/tokens", carl, json=body).status_code == 403
    second = team.call("POST", "/api/v1/tokens", carl, json={"owner": "carl", "name": "laptop"})
    assert second.status_code == 201
    assert second.json()["role"] == "contributor"
    listed = team.call("GET", "/api/v1/tokens", carl).json()
    assert {t["owner"] for t in listed} == {"carl"} and len(listed) == 2
    assert all("token" not in t for t in listed)
    everyone = team.call("GET", "/api/v1/tokens", team.admin_token).json()
    assert {"admin", "carl"} <= {t["owner"] for t in everyone}
    token_id = second.json()["id"]
    assert team.call("POST", f"/api/v1/tokens/{token_id}/revoke", carl).status_code == 200
    assert team.call("GET", ENVS, second.json()["token"]).status_code == 401
    assert team.call("GET", ENVS, carl).status_code == 200  # the other token still works
    admin_tokens = [t for t in everyone if t["owner"] == "admin"]
    refused = team.call("POST", f"/api/v1/tokens/{admin_tokens[0]['id']}/revoke", carl)
    assert refused.status_code == 404  # not theirs: not even shown to exist


def test_a_token_with_an_expiry_stops_working_then_and_says_so(team: Team) -> None:
    made = team.call(
        "POST",
        "/api/v1/tokens",
        team.admin_token,
        json={"owner": "tina", "role": "reader", "expires_in_days": 1},
    )
    assert made.status_code == 201, made.text
    token, token_id = made.json()["token"], made.json()["id"]
    assert team.call("GET", "/api/v1/whoami", token).json() == {"name": "tina", "role": "reader"}
    listed = {t["id"]: t for t in team.call("GET", "/api/v1/tokens", team.admin_token).json()}
    assert listed[token_id]["expires_at"] is not None
    # A day later, as the clock would have it: moved on the stored row, not on the machine.
    team.execute_sql(
        "UPDATE tokens SET expires_at = :past WHERE id = :id",
        past=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1),
        id=token_id,
    )
    # The server remembers a verified token for TOKEN_CACHE_SECONDS: a change made behind its
    # back (here, the row) takes effect within that window, not necessarily at once.
    refused = _refused_within(team, token, TOKEN_CACHE_SECONDS)
    assert refused.json()["detail"].startswith("the access token expired at ")
    for days in (0, -1, 99999):
        bad = team.call(
            "POST",
            "/api/v1/tokens",
            team.admin_token,
            json={"owner": "tina", "expires_in_days": days},
        )
        assert bad.status_code == 422 and "`expires_in_days`" in bad.json()["detail"]
    run = run_kiln(
        "token", "create", "tom", "--role", "reader", "--expires-in", "2", "--json",
        env={**team.env, "KILN_WORKSPACE": team.url, "KILN_TOKEN": team.admin_token},
    )  # fmt: skip
    assert json.loads(run.stdout)["owner"] == "tom"


def test_a_token_revoked_elsewhere_stops_working_within_the_cache_window(team: Team) -> None:
    """Revoked on the server host (the database, as `kiln token revoke` there writes it): the
    worker that remembered the token refuses it within TOKEN_CACHE_SECONDS."""
    token = team.token("vera", "reader")
    assert team.call("GET", "/api/v1/whoami", token).status_code == 200  # verified, remembered
    team.execute_sql(
        "UPDATE tokens SET revoked_at = :now WHERE owner = 'vera'",
        now=dt.datetime.now(dt.timezone.utc),
    )
    refused = _refused_within(team, token, TOKEN_CACHE_SECONDS)
    assert "unknown or revoked" in refused.json()["detail"]
    assert team.call("GET", "/api/v1/whoami", token).status_code == 401  # and stays refused


def test_a_token_revoked_through_the_server_is_refused_at_once(team: Team) -> None:
    made = team.call(
        "POST", "/api/v1/tokens", team.admin_token, json={"owner": "walt", "role": "reader"}
    )
    token, token_id = made.json()["token"], made.json()["id"]
    for _ in range(3):  # remembered by now
        assert team.call("GET", "/api/v1/environments", token).status_code == 200
    revoked = team.call("POST", f"/api/v1/tokens/{token_id}/revoke", team.admin_token)
    assert revoked.status_code == 200
    assert team.call("GET", "/api/v1/environments", token).status_code == 401
