"""The UI's sessions, form tokens and error pages through a plain HTTP client against the same
real server: fast checks of what the browser tests cover by looking."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import time

import httpx
from uisite import Site, form_token, session_cookie

from kilntesting.cli import KILN
from kilntesting.images import _stop, free_port

SHOP_2 = "/environments/shop/versions/2"


def test_no_session_redirects_to_the_login_page(site: Site) -> None:
    for path in ("/environments", SHOP_2, f"/runs/{site.run_id}", "/audit"):
        answer = httpx.get(site.url + path)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/login?next=%2F")
    assert httpx.get(site.url + "/api/v1/environments").status_code == 401  # the API: JSON 401
    forged = httpx.get(site.url + SHOP_2, cookies={"kiln_session": "kiln_" + "x" * 43})
    assert forged.status_code == 303


def test_login_keeps_only_a_session_token_in_the_cookie(site: Site) -> None:
    token = site.team.token("sam-ui", "contributor")
    client = session_cookie(site, token)
    [cookie] = [c for c in client.cookies.jar if c.name == "kiln_session"]
    assert cookie.value != token and token not in cookie.value
    assert cookie.has_nonstandard_attr("HttpOnly")
    assert cookie.get_nonstandard_attr("SameSite") == "strict"
    page = client.get(SHOP_2)
    assert page.status_code == 200 and "sam-ui" in page.text and token not in page.text
    listed = site.team.call("GET", "/api/v1/tokens", token).json()
    sessions = [t for t in listed if t["name"].startswith("web-session:")]  # listed, revocable
    assert len(sessions) == 1
    parent = [t for t in listed if t["name"] == "cli"]
    assert sessions[0]["name"] == f"web-session:{parent[0]['id']}"  # named after its token


def test_an_unknown_id_is_a_404_page(site: Site) -> None:
    client = session_cookie(site, site.team.admin_token)
    paths = [
        "/environments/nope/versions/1",
        "/environments/nope",
        "/environments/nope/versions/1/build/events",
        "/runs/exp_nope",
        "/runs/exp_nope/log/events",
        "/runs/exp_nope/files/logs/output.log",
    ]
    for path in paths:
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert answer.headers["content-type"].startswith("text/html")
        assert "<h1>Not found</h1>" in answer.text


def test_a_post_without_the_form_token_is_refused(site: Site) -> None:
    client = session_cookie(site, site.team.admin_token)
    tags = f"{SHOP_2}/tags"
    for data in ({"new_tag": "a=b"}, {"new_tag": "a=b", "csrf": "0" * 64}):
        answer = client.post(tags, data=data)
        assert answer.status_code == 403
        assert "the form&#39;s token is missing or stale" in answer.text
    assert "a=b" not in client.get(SHOP_2).text  # nothing changed
    other = session_cookie(site, site.team.admin_token)  # another session's token: refused
    stolen = form_token(other.get(SHOP_2).text)
    assert client.post(tags, data={"new_tag": "a=b", "csrf": stolen}).status_code == 403
    good = form_token(client.get(SHOP_2).text)
    assert client.post(tags, data={"new_tag": "c=d", "csrf": good}).status_code == 303
    assert "c=d" in client.get(SHOP_2).text


def test_a_login_form_from_elsewhere_is_refused(site: Site) -> None:
    """No login cookie (another site's form), or a mismatched one: refused, no session."""
    answer = httpx.post(
        site.url + "/login", data={"token": site.team.admin_token, "login_token": "forged"}
    )
    assert answer.status_code == 403 and "kiln_session" not in answer.headers.get("set-cookie", "")


def test_next_never_leaves_the_site(site: Site) -> None:
    client = httpx.Client(base_url=site.url)
    nonce = re.search(r'name="login_token" value="([^"]+)"', client.get("/login").text)
    assert nonce is not None
    data = {"token": site.team.admin_token, "login_token": nonce.group(1)}
    for target in ("//evil.example/x", "/\\evil.example", "https://evil.example/"):
        answer = client.post("/login", data={**data, "next": target})
        assert answer.headers["location"] == "/environments", target
        nonce = re.search(r'name="login_token" value="([^"]+)"', client.get("/login").text)
        assert nonce is not None
        data["login_token"] = nonce.group(1)
    answer = client.post("/login", data={**data, "next": "/runs?status=Failed"})
    assert answer.headers["location"] == "/runs?status=Failed"


def test_logout_ends_the_session(site: Site) -> None:
    client = session_cookie(site, site.team.admin_token)
    session = client.cookies["kiln_session"]
    assert client.post("/logout", data={}).status_code == 403  # the form token is needed
    answer = client.post("/logout", data={"csrf": form_token(client.get("/environments").text)})
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    again = httpx.get(site.url + "/environments", cookies={"kiln_session": session})
    assert again.status_code == 303  # the session's token is revoked, not just forgotten


def test_a_session_expires_after_twelve_hours(site: Site) -> None:
    from sqlalchemy import update

    from kiln.registry.schema import tokens
    from kiln.workspace import Workspace

    client = session_cookie(site, site.team.admin_token)
    session = client.cookies["kiln_session"]
    assert client.get("/environments").status_code == 200
    ws = Workspace(site.team.root / "ws")
    try:
        with ws.engine.begin() as connection:  # the session made 13 hours ago
            old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=13)
            connection.execute(
                update(tokens).where(tokens.c.name.startswith("web-session")).values(created_at=old)
            )
    finally:
        ws.close()
    assert client.get("/environments").status_code == 303
    api = site.team.call("GET", "/api/v1/whoami", session)
    assert api.status_code == 401 and "web session has expired" in api.json()["detail"]


def test_web_session_is_not_a_name_for_a_personal_token(site: Site) -> None:
    made = site.team.call(
        "POST", "/api/v1/tokens", site.team.admin_token,
        json={"owner": "admin", "name": "web-session"},
    )  # fmt: skip
    assert made.status_code == 422
    assert made.json()["detail"].startswith("`name`: 'web-session' is kept for web UI sessions")
    named = {"owner": "admin", "name": "web-session:1"}
    made = site.team.call("POST", "/api/v1/tokens", site.team.admin_token, json=named)
    assert made.status_code == 422


def test_a_session_token_cannot_log_in(site: Site) -> None:
    session = session_cookie(site, site.team.admin_token).cookies["kiln_session"]
    client = httpx.Client(base_url=site.url)
    nonce = re.search(r'name="login_token" value="([^"]+)"', client.get("/login").text)
    assert nonce is not None
    answer = client.post("/login", data={"token": session, "login_token": nonce.group(1)})
    assert answer.status_code == 401 and "that is a web session&#39;s token" in answer.text


def test_the_audit_page_is_for_admins(site: Site) -> None:
    reader = session_cookie(site, site.team.token("ria-ui", "reader"))
    answer = reader.get("/audit")
    assert answer.status_code == 403 and "ria-ui is a reader" in answer.text
    admin = session_cookie(site, site.team.admin_token)
    page = admin.get("/audit")
    assert page.status_code == 200 and "session.open" in page.text


def test_bad_filter_values_show_the_error_beside_the_field(site: Site) -> None:
    client = session_cookie(site, site.team.admin_token)
    page = client.get("/runs", params={"status": "Done", "page": "0"})
    assert page.status_code == 200
    assert (
        'id="status-error"' in page.text
        and "`status`: &#39;Done&#39; is not a run status" in page.text
    )
    assert "`page`: &#39;0&#39; is not a page number; use 1 or more" in page.text


def test_kiln_ui_serves_a_local_workspace_to_its_owner(site: Site) -> None:
    """No login (the owner), only 127.0.0.1's host names, forms still need their token."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    workspace = site.team.root / "ws"
    process = subprocess.Popen(
        [*KILN, "ui", "--workspace", str(workspace), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                page = httpx.get(url + "/environments")
                break
            except httpx.ConnectError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        assert page.status_code == 200 and "local:" in page.text and "Log out" not in page.text
        assert httpx.get(url + "/login").headers["location"] == "/environments"
        rebound = httpx.get(url + "/environments", headers={"host": "evil.example"})
        assert rebound.status_code == 400
        refused = httpx.post(url + SHOP_2 + "/tags", data={"new_tag": "x=y"})
        assert refused.status_code == 403
        token = form_token(httpx.get(url + SHOP_2).text)
        tagged = httpx.post(url + SHOP_2 + "/tags", data={"new_tag": "local=yes", "csrf": token})
        assert tagged.status_code == 303
        shown = json.loads(site.team.call("GET", "/api/v1" + SHOP_2, site.team.admin_token).text)
        assert shown["tags"]["local"] == "yes"
    finally:
        _stop(process)  # type: ignore[arg-type]


def test_a_reader_cannot_rebuild(site: Site) -> None:
    reader = session_cookie(site, site.team.token("rob-ui", "reader"))
    page = reader.get("/environments/shop/versions/1")
    assert "Rebuild" not in page.text
    answer = reader.post(
        "/environments/shop/versions/1/build", data={"csrf": form_token(page.text)}
    )
    assert answer.status_code == 403 and "rob-ui is a reader" in answer.text


def test_a_version_names_the_models_made_with_it(site: Site) -> None:
    client = session_cookie(site, site.team.admin_token)
    used = client.get("/environments/py/versions/1").text
    assert f'model weights:1 (from run <a href="/runs/{site.run_id}">' in used
    assert "model weights" not in client.get(SHOP_2).text
    listed = client.get("/models").text
    assert "weights:1" in listed and "py:1" in listed


def test_a_deployment_shows_its_state_and_log(site: Site) -> None:
    client = session_cookie(site, site.team.admin_token)
    listed = client.get("/deployments").text
    assert '<a href="/deployments/web">web</a>' in listed
    page = client.get("/deployments/web")
    assert page.status_code == 200
    assert re.search(r"<h1>Deployment web <span class=\"status status-(healthy|running)", page.text)
    assert "http://127.0.0.1:" in page.text  # the scoring URI
    assert 'aria-label="Deployment log"' in page.text
    assert '<a href="/deployments/web">web</a>' in client.get("/environments/py/versions/1").text
    assert client.get("/deployments/nope").status_code == 404


def test_runs_filter_by_status_experiment_and_environment(site: Site) -> None:
    client = session_cookie(site, site.team.admin_token)
    assert site.run_id in client.get("/runs", params={"status": "Completed"}).text
    assert "No run matches." in client.get("/runs", params={"status": "Failed"}).text
    assert site.run_id in client.get("/runs", params={"experiment": "exp"}).text
    assert "No run matches." in client.get("/runs", params={"experiment": "other"}).text
    assert site.run_id in client.get("/runs", params={"environment": "py:1"}).text
    assert "No run matches." in client.get("/runs", params={"environment": "shop"}).text


def test_the_api_filters_and_pages_runs_by_status(site: Site) -> None:
    token = site.team.token("rhea-api", "reader")
    done = site.team.call("GET", "/api/v1/runs?status=Completed", token).json()
    assert site.run_id in [r["id"] for r in done] and {r["status"] for r in done} == {"Completed"}
    failed = site.team.call("GET", "/api/v1/runs?status=Failed", token).json()
    assert site.run_id not in [r["id"] for r in failed]
    every = [r["id"] for r in site.team.call("GET", "/api/v1/runs", token).json()]
    second = site.team.call("GET", "/api/v1/runs?limit=1&offset=1", token).json()
    assert [r["id"] for r in second] == every[1:2]
    bad = site.team.call("GET", "/api/v1/runs?status=Done", token)
    assert bad.status_code == 422
    assert bad.json()["detail"].startswith("`status`: 'Done' is not a run status; use one of")


def test_a_rebuild_is_audited_with_who_asked(site: Site) -> None:
    client = session_cookie(site, site.team.token("reb-ui", "contributor"))
    page = client.get(SHOP_2)
    asked = client.post(SHOP_2 + "/build", data={"csrf": form_token(page.text)})
    assert asked.status_code == 303
    trail = site.team.call("GET", "/api/v1/audit?limit=5", site.team.admin_token).json()
    [entry] = [e for e in trail if (e["actor"], e["action"]) == ("reb-ui", "build.request")]
    assert entry["object"] == "shop:2"
    env = {**site.team.env, "KILN_TOKEN": site.team.admin_token}
    listed = subprocess.run(
        [*KILN, "audit", "--server", site.url, "--limit", "5", "--json"],
        env={**os.environ, **env}, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert entry in json.loads(listed.stdout)


def test_the_api_sends_a_test_request_and_audits_it(site: Site) -> None:
    token = site.team.token("tim-api", "contributor")
    sent = site.team.call("POST", "/api/v1/deployments/web/test", token, json={"body": "[1]"})
    assert sent.status_code == 200, sent.text
    answer = sent.json()
    assert answer["status"] == 200 and "echo" in answer["body"] and answer["cut"] is False
    bad = site.team.call("POST", "/api/v1/deployments/web/test", token, json={"body": "{"})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("`body`: not JSON (")
    missing = site.team.call("POST", "/api/v1/deployments/nope/test", token, json={"body": "1"})
    assert missing.status_code == 404
    trail = site.team.call("GET", "/api/v1/audit?limit=20", site.team.admin_token).json()
    assert [
        e["object"] for e in trail if e["actor"] == "tim-api" and e["action"] == "deployment.test"
    ] == ["web"]
    reader = session_cookie(site, site.team.token("rex-ui", "reader"))
    page = reader.get("/deployments/web")
    assert "Send test request" not in page.text
    posted = reader.post(
        "/deployments/web/test", data={"body": "[1]", "csrf": form_token(page.text)}
    )
    assert posted.status_code == 403 and "rex-ui is a reader" in posted.text
