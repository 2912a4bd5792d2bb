"""Deployments with KILN_WORKSPACE=http://HOST:PORT: the service runs on the client that created
it (its supervisor, workers, folder and log there) and its record is the server's, so any
machine lists and shows it; who may change one follows the ownership rule; what only the
serving machine can do names that machine elsewhere."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from kiln.workspace import Workspace
from kilntesting.cli import run_kiln, run_kiln_on_another_host
from kilntesting.runs import write_script
from kilntesting.serving import post
from kilntesting.teamserver import Team

SCORE = """
    import json, os
    def init():
        global model
        model = open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.txt")).read()
    def run(raw_data):
        return {"model": model, "input": json.loads(raw_data), "token": os.environ.get("KILN_TOKEN")}
"""


def _register(env: dict[str, str], folder: Path, model: str, text: str) -> None:
    """The python-only environment ``rd-py`` and a version of ``model`` holding ``text``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kiln.yml").write_text("name: rd-py\npython: {version: '3.11'}\n")
    run_kiln("env", "register", "-f", str(folder / "kiln.yml"), env=env)
    (folder / "model.txt").write_text(text)
    run_kiln("model", "register", "-n", model, "-p", str(folder / "model.txt"), env=env)


def _create(serve: Path, name: str, *extra: str, model: str = "rd-m") -> list[str]:
    return ["deploy", "create", "-n", name, "--model", model, "--entry-script", "score.py",
            "-d", str(serve), "--env", "rd-py", *extra]  # fmt: skip


def _web_page(team: Team, token: str, path: str) -> str:
    """A page of the web UI, as a browser gets it after logging in with ``token``."""
    import re

    import httpx

    with httpx.Client(base_url=team.url, timeout=60) as browser:
        form = browser.get("/login").text
        nonce = re.search(r'name="login_token" value="([^"]+)"', form)
        assert nonce is not None, form
        browser.post("/login", data={"token": token, "login_token": nonce.group(1)})
        page = browser.get(path)
        assert page.status_code == 200, page.text
        return page.text


def _silence(team: Team, name: str, *, seconds: float) -> None:
    """Age the record's last word from its supervisor, in the server's own database."""
    import time

    from sqlalchemy import update

    from kiln.registry.schema import deployments

    ws = Workspace(team.root / ("server" if team.database_url else "ws"))
    try:
        with ws.engine.begin() as connection:
            aged = update(deployments).where(deployments.c.name == name)
            connection.execute(aged.values(updated_at=time.time() - seconds))
    finally:
        ws.close()


def _refused(result: object, code: int, text: str) -> None:
    stderr = getattr(result, "stderr", "")
    assert getattr(result, "returncode", None) == code, stderr
    assert text in stderr and len(stderr.strip().splitlines()) == 1, stderr


def test_a_deployment_runs_on_its_client_and_its_record_is_the_servers(
    team: Team, tmp_path: Path, shared_cache: Path
) -> None:
    ann = team.machine(team.token("ann", "contributor"), tmp_path / "ann", shared_cache)
    bob = team.machine(team.token("bob", "contributor"), tmp_path / "bob", shared_cache)
    rita = team.machine(team.token("rita", "reader"), tmp_path / "rita", shared_cache)
    _register(ann, tmp_path / "files", "rd-m", "one")
    serve = tmp_path / "serve"
    write_script(serve, "score.py", SCORE)
    try:
        made = json.loads(run_kiln(*_create(serve, "rd-web"), "--json", env=ann).stdout)
        assert (made["state"], made["created_by"], made["models"]) == ("Healthy", "ann", ["rd-m:1"])
        uri = made["scoring_uri"]
        assert post(uri, b'{"x": 1}') == (
            200,
            b'{"model": "one", "input": {"x": 1}, "token": null}',
        )
        # Its folder and log are on ann's machine, in its local side of the server.
        logs = list((tmp_path / "ann").rglob("deployments/rd-web/service.log"))
        assert len(logs) == 1 and "serving http://" in logs[0].read_text()
        assert "serving http://" in run_kiln("deploy", "logs", "rd-web", env=ann).stdout
        # Any machine and the API see the record, as another user too.
        for who in (ann, rita):
            shown = json.loads(run_kiln("deploy", "show", "rd-web", "--json", env=who).stdout)
            assert shown == {**made, "updated_at": shown["updated_at"]}
            listed = json.loads(run_kiln("deploy", "list", "--json", env=who).stdout)
            assert [d["name"] for d in listed] == ["rd-web"]
        api = team.call("GET", "/api/v1/deployments/rd-web", rita["KILN_TOKEN"]).json()
        assert (api["state"], api["scoring_uri"], api["created_by"]) == ("Healthy", uri, "ann")
        listed_api = team.call("GET", "/api/v1/deployments", rita["KILN_TOKEN"]).json()
        assert [d["name"] for d in listed_api] == ["rd-web"]
        assert "rd-web" in _web_page(team, rita["KILN_TOKEN"], "/deployments")
        assert "Healthy" in _web_page(team, rita["KILN_TOKEN"], "/deployments/rd-web")
        # On another machine, ann's own token: the record as recorded; what needs this
        # machine's processes names it.
        elsewhere = {**ann, "KILN_DATA_DIR": str(tmp_path / "ann-elsewhere")}
        far = run_kiln_on_another_host(elsewhere, "deploy", "show", "rd-web", "--json")
        assert json.loads(far.stdout)["state"] == "Healthy", far.stderr
        here = socket.gethostname()
        for command, what in (
            (["deploy", "logs", "rd-web"], "read its log there"),
            (["deploy", "update", "rd-web", "--workers", "2"], "update it there"),
            (["deploy", "delete", "rd-web"], "delete it there"),
        ):
            refused = run_kiln_on_another_host(elsewhere, *command)
            _refused(refused, 4, f"deployment 'rd-web' is served from {here}; {what}")
        assert post(uri, b"1")[0] == 200
        # Another contributor changes nothing of it, a reader creates nothing.
        for command in (
            ["deploy", "delete", "rd-web"],
            ["deploy", "update", "rd-web", "--workers", "2"],
        ):
            _refused(run_kiln(*command, env=bob, check=False), 4, "created by someone else")
        assert post(uri, b"1")[0] == 200
        refused = run_kiln(*_create(serve, "rd-other"), env=rita, check=False)
        _refused(refused, 4, "rita is a reader; writes need a contributor or admin token")
        secret = run_kiln(
            *_create(serve, "rd-other", "--env-var", "API_TOKEN=abc123456"),
            env=ann,
            check=False,
        )
        _refused(secret, 2, "API_TOKEN looks like a secret stored in plain")
        # An update keeps serving on the same URI, with the new model version.
        _register(ann, tmp_path / "files", "rd-m", "two")
        updated = json.loads(
            run_kiln("deploy", "update", "rd-web", "--model", "rd-m:2", "--json", env=ann).stdout
        )
        assert (updated["state"], updated["serving_generation"]) == ("Healthy", 2)
        assert updated["scoring_uri"] == uri
        assert post(uri, b"2") == (200, b'{"model": "two", "input": 2, "token": null}')
        # Deleted: the service stops and the record goes, for everyone.
        run_kiln("deploy", "delete", "rd-web", env=ann)
        assert run_kiln("deploy", "show", "rd-web", env=rita, check=False).returncode == 3
        assert team.call("GET", "/api/v1/deployments/rd-web", rita["KILN_TOKEN"]).status_code == 404
        assert not logs[0].exists()
    finally:
        run_kiln("deploy", "delete", "rd-web", env=ann, check=False)
    audit = team.call("GET", "/api/v1/audit", team.admin_token).json()
    actions = [(e["actor"], e["action"]) for e in audit if e["object"] == "rd-web"]
    assert actions == [("ann", f"deployment.{a}") for a in ("delete", "update", "create")]


def test_a_deployment_served_elsewhere_shows_its_record_and_names_its_host(
    team: Team, tmp_path: Path, shared_cache: Path
) -> None:
    cara = team.machine(team.token("cara", "contributor"), tmp_path / "cara", shared_cache)
    spec = {
        "models": ["far-m:1"], "entry_script": "score.py", "source_snapshot": "a" * 64,
        "env_name": "rd-py", "env_version": "1", "workers": 1, "max_body_bytes": 1024,
    }  # fmt: skip
    record = {
        "name": "rd-far", "state": "Healthy", "spec": spec, "host": "10.0.0.9", "port": 5001,
        "supervisor": "far-away.example:4242:99", "kind": "process",
    }  # fmt: skip
    made = team.call(
        "POST", "/api/v1/deployment-records", cara["KILN_TOKEN"], json={"record": record}
    )
    assert made.status_code == 201, made.text
    assert made.json()["created_by"] == "cara"
    # No pid of that host is looked for here: the recorded state stands, not Dead.
    shown = json.loads(run_kiln("deploy", "show", "rd-far", "--json", env=cara).stdout)
    assert (shown["state"], shown["scoring_uri"]) == ("Healthy", "http://10.0.0.9:5001/score")
    for command, what in (
        (["deploy", "logs", "rd-far"], "read its log there"),
        (["deploy", "update", "rd-far", "--workers", "2"], "update it there"),
        (["deploy", "delete", "rd-far"], "delete it there"),
    ):
        refused = run_kiln(*command, env=cara, check=False)
        _refused(refused, 4, f"deployment 'rd-far' is served from far-away.example; {what}")
    page = _web_page(team, cara["KILN_TOKEN"], "/deployments/rd-far")
    assert "Healthy" in page and "served from far-away.example; read its log there" in page
    # Its supervisor's heartbeat (the record's updated_at) stops: shown Unknown, not Healthy.
    _silence(team, "rd-far", seconds=600)
    shown = json.loads(run_kiln("deploy", "show", "rd-far", "--json", env=cara).stdout)
    assert shown["state"] == "Unknown"
    assert shown["error"].startswith("no word from its supervisor on far-away.example since ")
    # The server keeps no secret a client sends, whatever the client checked.
    secret = {**record, "name": "rd-secret"}
    secret["spec"] = {**spec, "environment_variables": {"API_TOKEN": "abc123456"}}
    answer = team.call(
        "POST", "/api/v1/deployment-records", cara["KILN_TOKEN"], json={"record": secret}
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["detail"].startswith("`environment_variables`: API_TOKEN looks like")
    dead = {"values": {"state": "Dead"}}  # seen on a host, never stored
    answer = team.call("PATCH", "/api/v1/deployment-records/rd-far", cara["KILN_TOKEN"], json=dead)
    assert answer.status_code == 422 and answer.json()["detail"].startswith("`state`: 'Dead'")
    deleted = team.call("DELETE", "/api/v1/deployment-records/rd-far", cara["KILN_TOKEN"])
    assert deleted.json() == {"deleted": True}


def test_the_sdk_deploys_through_the_server_in_this_process(
    team: Team, tmp_path: Path, shared_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dora = team.machine(team.token("dora", "contributor"), tmp_path / "dora", shared_cache)
    _register(dora, tmp_path / "files", "rd-sdk-m", "sdk")
    for name, value in dora.items():
        monkeypatch.setenv(name, value)  # the supervisor inherits the token with the rest
    from kiln.sdk.serving import InferenceConfig, LocalWebservice, Model

    serve = tmp_path / "serve"
    write_script(serve, "score.py", SCORE)
    workspace = Workspace(team.url)
    model = Model.get(workspace, "rd-sdk-m")
    inference = InferenceConfig("score.py", serve, "rd-py")
    web = Model.deploy(
        workspace, "rd-sdk", [model], inference, LocalWebservice.deploy_configuration()
    )
    try:
        web.wait_for_deployment()
        assert web.run({"x": 2}) == {"model": "sdk", "input": {"x": 2}, "token": None}
        assert "serving http://" in web.get_logs()
    finally:
        web.delete()
    assert team.call("GET", "/api/v1/deployments/rd-sdk", dora["KILN_TOKEN"]).status_code == 404


def test_a_container_deployment_through_the_server(
    team: Team, tmp_path: Path, shared_cache: Path, request: pytest.FixtureRequest
) -> None:
    """The same with ``--container``: the containers run on the client, labelled by its
    local side of the server; the record names the image and the containers."""
    base = request.getfixturevalue("base_image")
    eve = team.machine(team.token("eve", "contributor"), tmp_path / "eve", shared_cache)
    eve["KILN_BASE_IMAGE"] = base.local_ref  # the environment names no base of its own
    _register(eve, tmp_path / "files", "rd-box-m", "boxed")
    serve = tmp_path / "serve"
    write_script(serve, "score.py", SCORE)
    create = _create(serve, "rd-box", "--container", "--json", model="rd-box-m")
    try:
        created = run_kiln(*create, env=eve, check=False)
        assert created.returncode == 0, run_kiln("deploy", "logs", "rd-box", env=eve).stdout
        made = json.loads(created.stdout)
        assert (made["state"], made["kind"], len(made["containers"])) == ("Healthy", "container", 1)
        assert made["image_digest"].startswith("sha256:")
        assert post(made["scoring_uri"], b"3") == (
            200,
            b'{"model": "boxed", "input": 3, "token": null}',
        )
        api = team.call("GET", "/api/v1/deployments/rd-box", eve["KILN_TOKEN"]).json()
        assert api["containers"] == made["containers"]
    finally:
        run_kiln("deploy", "delete", "rd-box", env=eve, check=False)
    assert team.call("GET", "/api/v1/deployments/rd-box", eve["KILN_TOKEN"]).status_code == 404
