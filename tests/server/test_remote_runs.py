"""Runs and named targets with KILN_WORKSPACE=http://HOST:PORT: a run is carried out on the
client and its record, metrics and log are the server's, so any machine sees it as the server
host does; who may change a run follows the ownership rule."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from kiln.registry.run_database import CoreRunDatabase
from kiln.registry.server_runs import ServerRunDatabase
from kiln.workspace import Workspace
from kilntesting.cli import run_kiln, run_kiln_on_another_host
from kilntesting.runqueries import query_steps
from kilntesting.runs import write_script
from kilntesting.teamserver import Team, team_server

TRAIN = """
    import os
    from kiln import Run
    run = Run.get_context()
    print("online" if not run.offline else "offline", flush=True)
    run.log("accuracy", 0.5)
    run.log("accuracy", 0.75)
    run.log_metrics({"loss": 0.25})
    os.makedirs("outputs", exist_ok=True)
    open("outputs/model.txt", "w").write("weights")
"""


def _on_host(team: Team) -> dict[str, str]:
    where = team.root / ("server" if team.database_url else "ws")
    return {**team.env, "KILN_WORKSPACE": str(where)}


def _register(env: dict[str, str], folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kiln.yml").write_text(f"name: {name}\npython: {{version: '3.11'}}\n")
    run_kiln("env", "register", "-f", str(folder / "kiln.yml"), env=env)


def test_runs_through_the_server_show_what_the_server_host_shows(
    team: Team, tmp_path: Path, shared_cache: Path
) -> None:
    ann = team.machine(team.token("ann", "contributor"), tmp_path / "ann", shared_cache)
    _register(ann, tmp_path / "env", "remote-runs")
    src = tmp_path / "src"
    write_script(src, "train.py", TRAIN)
    submit = ["run", "submit", "--env", "remote-runs", "-d", str(src), "-e", "far-show"]
    made = json.loads(run_kiln(*submit, "--json", "train.py", env=ann).stdout)
    assert (made["status"], made["exit_code"]) == ("Completed", 0)
    run_id = made["id"]
    for command in (
        ["run", "list", "-e", "far-show", "--json"],
        ["run", "list", "-e", "far-show"],
        ["run", "show", run_id, "--json"],
        ["run", "show", run_id],
        ["run", "logs", run_id],
    ):
        assert run_kiln(*command, env=ann).stdout == run_kiln(*command, env=_on_host(team)).stdout
    shown = json.loads(run_kiln("run", "show", run_id, "--json", env=ann).stdout)
    assert shown["metrics"] == {"accuracy": [0.5, 0.75], "loss": 0.25}
    stored = team.call("GET", f"/api/v1/run-records/{run_id}", ann["KILN_TOKEN"]).json()
    assert stored["created_by"] == "ann"
    assert shown["files"] == ["outputs/model.txt", "logs/output.log"]
    # What the script logged inside the run is the server's: any reader sees it.
    reader = team.token("rita", "reader")
    answer = team.call("GET", f"/api/v1/runs/{run_id}/metrics", reader)
    assert answer.json() == {"accuracy": [0.5, 0.75], "loss": 0.25}
    # Another machine (a data folder of its own) reads the log the server keeps, also by --follow.
    elsewhere = {**ann, "KILN_TOKEN": reader, "KILN_DATA_DIR": str(tmp_path / "rita")}
    log = run_kiln("run", "logs", run_id, env=ann).stdout
    assert "online" in log and f"run {run_id}: Completed" in log
    assert run_kiln("run", "logs", run_id, env=elsewhere).stdout == log
    assert run_kiln("run", "logs", run_id, "--follow", env=elsewhere).stdout == log
    # The outputs are in the server's artifact store: any machine downloads them
    # (tests/server/test_run_files.py has the rest).
    for who, out in ((ann, tmp_path / "out"), (elsewhere, tmp_path / "out-elsewhere")):
        run_kiln("run", "download", run_id, "-d", str(out), env=who)
        assert (out / "outputs" / "model.txt").read_text() == "weights"


def test_a_reader_cannot_submit_and_nothing_is_recorded(
    team: Team, tmp_path: Path, shared_cache: Path
) -> None:
    rhea = team.machine(team.token("rhea", "reader"), tmp_path / "rhea", shared_cache)
    src = tmp_path / "src"
    write_script(src, "train.py", "print(1)\n")
    submit = ["run", "submit", "-d", str(src), "-e", "far-reader", "train.py"]
    refused = run_kiln(*submit, env=rhea, check=False)
    assert (refused.returncode, refused.stderr) == (
        4,
        "kiln: error: rhea is a reader; writes need a contributor or admin token\n",
    )
    assert json.loads(run_kiln("run", "list", "-e", "far-reader", "--json", env=rhea).stdout) == []
    row = {"id": "far-reader_1_x", "experiment": "far-reader", "status": "Queued"}
    assert team.call("POST", "/api/v1/run-records", rhea["KILN_TOKEN"], json=row).status_code == 403


def _wait_until_running(env: dict[str, str], run_id: str) -> None:
    deadline = time.monotonic() + 120
    while json.loads(run_kiln("run", "show", run_id, "--json", env=env).stdout)["status"] in (
        "Queued",
        "Preparing",
    ):
        assert time.monotonic() < deadline, f"{run_id} never started"
        time.sleep(0.3)


def test_a_contributor_changes_only_the_runs_they_submitted(
    team: Team, tmp_path: Path, shared_cache: Path
) -> None:
    ann = team.machine(team.token("ann", "contributor"), tmp_path / "ann", shared_cache)
    bob = team.machine(team.token("bob", "contributor"), tmp_path / "bob", shared_cache)
    admin = team.machine(team.admin_token, tmp_path / "admin", shared_cache)
    src = tmp_path / "src"
    write_script(src, "sleepy.py", "import time\nprint('started', flush=True)\ntime.sleep(600)\n")
    submit = ["run", "submit", "-d", str(src), "-e", "far-owned", "--detach", "--json"]
    run_id = json.loads(run_kiln(*submit, "sleepy.py", env=ann).stdout)["id"]
    _wait_until_running(ann, run_id)
    # The log of a running run reaches the server as it grows: bob's machine reads it.
    deadline = time.monotonic() + 60
    while "started" not in run_kiln("run", "logs", run_id, env=bob, check=False).stdout:
        assert time.monotonic() < deadline, "the running run's log never reached the server"
        time.sleep(0.5)
    refused = run_kiln("run", "cancel", run_id, env=bob, check=False)
    assert (refused.returncode, refused.stderr) == (
        4,
        f"kiln: error: run {run_id} was created by someone else; only they or an admin may "
        "change it\n",
    )
    metrics = {"metrics": [["stolen", "1", 1.0]]}
    path = f"/api/v1/run-records/{run_id}/metrics"
    assert team.call("POST", path, bob["KILN_TOKEN"], json=metrics).status_code == 403
    assert json.loads(run_kiln("run", "show", run_id, "--json", env=bob).stdout)["status"] == (
        "Running"
    )
    canceled = run_kiln("run", "cancel", run_id, "--grace", "2", "--json", env=admin)
    assert json.loads(canceled.stdout) == {"id": run_id, "status": "Canceled"}
    shown = json.loads(run_kiln("run", "show", run_id, "--json", env=bob).stdout)
    assert (shown["status"], shown["metrics"]) == ("Canceled", {})
    followed = run_kiln("run", "logs", run_id, "--follow", env=bob).stdout
    assert followed == run_kiln("run", "logs", run_id, env=ann).stdout
    assert "\nstarted\n" in followed and f"run {run_id}: Canceled" in followed


def test_named_targets_are_the_servers(team: Team, tmp_path: Path, shared_cache: Path) -> None:
    cleo = team.machine(team.token("cleo", "contributor"), tmp_path / "cleo", shared_cache)
    rhea = team.machine(team.token("rhea", "reader"), tmp_path / "rhea", shared_cache)
    run_kiln("target", "add", "far-gpu", "ray://127.0.0.1:10001", env=cleo)
    listed = run_kiln("target", "list", "--json", env=rhea).stdout
    assert listed == run_kiln("target", "list", "--json", env=_on_host(team)).stdout
    assert {"name": "far-gpu", "kind": "ray", "address": "ray://127.0.0.1:10001"}.items() <= (
        next(t for t in json.loads(listed) if t["name"] == "far-gpu").items()
    )
    assert next(t for t in json.loads(listed) if t["name"] == "far-gpu")["created_by"] == "cleo"
    # Another contributor can neither point cleo's target elsewhere nor remove it; an admin can.
    dan = team.machine(team.token("dan", "contributor"), tmp_path / "dan", shared_cache)
    for command in (["add", "far-gpu", "ray://127.0.0.1:10009"], ["remove", "far-gpu"]):
        taken = run_kiln("target", *command, env=dan, check=False)
        assert (taken.returncode, taken.stderr) == (
            4,
            "kiln: error: target 'far-gpu' was created by someone else; only they or an admin "
            "may change it\n",
        )
    admin = team.machine(team.admin_token, tmp_path / "admin", shared_cache)
    run_kiln("target", "add", "far-gpu", "ray://127.0.0.1:10001", env=admin)
    run_kiln("target", "add", "far-gpu", "ray://127.0.0.1:10001", env=cleo, check=False)
    assert (
        json.loads(run_kiln("target", "list", "--json", env=rhea).stdout)[0]["created_by"]
        == "admin"
    )
    run_kiln("target", "remove", "far-gpu", env=admin)
    run_kiln("target", "add", "far-gpu", "ray://127.0.0.1:10001", env=cleo)
    refused = run_kiln("target", "add", "far-cpu", "ray://127.0.0.1:10002", env=rhea, check=False)
    assert refused.returncode == 4 and "rhea is a reader" in refused.stderr
    bad = run_kiln("target", "add", "far-bad", "ray://", env=cleo, check=False)
    assert bad.returncode == 2
    assert (
        bad.stderr
        == run_kiln("target", "add", "far-bad", "ray://", env=_on_host(team), check=False).stderr
    )
    run_kiln("target", "remove", "far-gpu", env=cleo)
    gone = run_kiln("target", "remove", "far-gpu", env=cleo, check=False)
    assert (gone.returncode, gone.stderr) == (
        3,
        "kiln: error: no target 'far-gpu'; see `kiln target list`\n",
    )


def test_a_log_bigger_than_a_request_reaches_the_server_whole(
    team: Team, tmp_path: Path, shared_cache: Path
) -> None:
    dana = team.machine(team.token("dana", "contributor"), tmp_path / "dana", shared_cache)
    src = tmp_path / "src"
    write_script(
        src,
        "chatty.py",
        "import sys\nfor i in range(5 * 1024):\n    sys.stdout.write(f'{i:07d}' + 'x' * 1016 + '\\n')\n",
    )
    submit = ["run", "submit", "-d", str(src), "-e", "far-chatty", "--json", "chatty.py"]
    run_id = json.loads(run_kiln(*submit, env=dana).stdout)["id"]
    here = run_kiln("run", "logs", run_id, env=dana).stdout
    assert here.count("x" * 1016 + "\n") == 5 * 1024  # over 5 MiB: three requests
    elsewhere = {**dana, "KILN_DATA_DIR": str(tmp_path / "elsewhere")}
    assert run_kiln("run", "logs", run_id, env=elsewhere).stdout == here


def test_the_server_run_database_gives_what_a_local_one_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = Workspace.create(tmp_path / "local")
    try:
        expected = query_steps(CoreRunDatabase(local.engine))
    finally:
        local.close()
    with team_server(tmp_path / "team") as team:  # its own: the steps list every run
        monkeypatch.setenv("KILN_CONFIG_DIR", team.env["KILN_CONFIG_DIR"])
        monkeypatch.setenv("KILN_TOKEN", team.token("quinn", "contributor"))
        seen = query_steps(ServerRunDatabase(team.url))
    # The server records the token's user as the run's author, and keeps its own time for a
    # target, not the client's: the rest is equal.
    finished = expected[16]
    assert isinstance(finished, dict)
    finished["created_by"] = "quinn"
    for targets in (expected[23], seen[23]):
        assert isinstance(targets, list)
        for target in targets:
            target.pop("created_at")
            target["created_by"] = "quinn" if targets is expected[23] else target["created_by"]
    assert repr(seen) == repr(expected)


def test_malformed_run_records_are_refused_and_change_nothing(team: Team) -> None:
    token = team.token("mal", "contributor")
    row = {
        "id": "../../escape",
        "experiment": "far-bad",
        "status": "Queued",
        "script": "t.py",
        "arguments": [],
        "snapshot_digest": "s" * 64,
        "env_name": "py",
        "env_version": "1",
        "build_hash": "b" * 64,
        "compute_target": "local",
        "created_at": 1.0,
    }
    escape = team.call("POST", "/api/v1/run-records", token, json=row)
    assert escape.status_code == 422 and "run id '../../escape' is not valid" in escape.text
    mine = {**row, "id": "far-bad_1_a", "created_by": "someone-else"}  # never trusted
    made = team.call("POST", "/api/v1/run-records", token, json=mine)
    assert made.status_code == 201 and made.json()["arguments"] == []
    assert made.json()["created_by"] == "mal"  # the token's user, not what the client said
    again = team.call("POST", "/api/v1/run-records", token, json={**row, "id": "far-bad_1_a"})
    assert again.status_code == 409
    path = "/api/v1/run-records/far-bad_1_a"
    for body, expected in (
        ({"values": {"bogus": 1}}, "`values.bogus`: Extra inputs are not permitted"),
        (
            {"values": {"exit_code": "three"}},
            "`values.exit_code`: Input should be a valid integer, unable to parse string as an "
            "integer",
        ),
        ({"values": {"id": "other"}}, "`values.id`: Extra inputs are not permitted"),
        ({"values": {"created_by": "x"}}, "`values.created_by`: Extra inputs are not permitted"),
    ):
        refused = team.call("PATCH", path, token, json=body)
        assert (refused.status_code, refused.json()["detail"].split(";")[0]) == (422, expected)
    chunk = {"offset": 0, "data": "not base64!", "last": True}
    assert team.call("POST", f"{path}/log", token, json=chunk).status_code == 422
    gap = {"offset": 10, "data": "", "last": True}
    assert team.call("POST", f"{path}/log", token, json=gap).status_code == 409
    assert team.call("GET", f"{path}/log", token).status_code == 404  # nothing was kept
    kept = team.call("GET", path, token).json()
    assert (kept["status"], kept["exit_code"]) == ("Queued", None)
    assert team.up()


def test_the_server_keeps_a_run_log_up_to_its_limit_and_says_where_it_cut(
    tmp_path: Path,
) -> None:
    limit = 10 * 1024  # KILN_SERVER_MAX_RUN_LOG_MB=0.009765625
    with team_server(tmp_path / "team", environment={"KILN_SERVER_MAX_RUN_LOG_MB": str(limit / 2**20)}) as team:  # fmt: skip
        token = team.token("loud", "contributor")
        row = {
            "id": "loud_1_a", "experiment": "loud", "status": "Running", "script": "t.py",
            "arguments": [], "snapshot_digest": "s" * 64, "env_name": "py", "env_version": "1",
            "build_hash": "b" * 64, "compute_target": "local", "created_at": 1.0,
        }  # fmt: skip
        assert team.call("POST", "/api/v1/run-records", token, json=row).status_code == 201
        path = "/api/v1/run-records/loud_1_a/log"
        sent = b"".join(f"{i:05d}".encode() + b"." * 1018 + b"\n" for i in range(20))  # 20 KiB

        def post(offset: int, size: int, last: bool = False) -> int:
            data = base64.b64encode(sent[offset : offset + size]).decode()
            body = {"offset": offset, "data": data, "last": last}
            return team.call("POST", path, token, json=body).status_code

        def read() -> bytes:
            return base64.b64decode(team.call("GET", path, token).json()["data"])

        assert post(0, 8192) == 200
        assert post(8192, 8192) == 200  # 2 KiB kept, 6 KiB counted and dropped
        assert post(8192, 1024) == 409  # the server counted every byte it was sent
        assert read() == sent[:limit]  # a running run's log: what is kept so far
        assert post(16384, len(sent) - 16384, last=True) == 200
        whole = read()
        assert whole.startswith(sent[:limit]) and len(whole) < limit + 200
        assert whole[limit:].decode().strip() == (
            f"[kiln server: this log was cut at {limit} bytes (KILN_SERVER_MAX_RUN_LOG_MB); "
            "the machine that ran the run keeps all of it]"
        )
        # Starting over from byte 0 (a client that lost count) forgets what was dropped.
        assert post(0, 1024) == 200 and post(1024, 1024, last=True) == 200
        assert read() == sent[:2048]


def test_a_cancel_from_another_machine_stops_the_run_through_its_watcher(
    team: Team, tmp_path: Path, shared_cache: Path
) -> None:
    eve = team.machine(team.token("eve", "contributor"), tmp_path / "eve", shared_cache)
    src = tmp_path / "src"
    write_script(src, "sleepy.py", "import time\nprint('started', flush=True)\ntime.sleep(600)\n")
    submit = ["run", "submit", "-d", str(src), "-e", "far-cancel", "--detach", "--json"]
    run_id = json.loads(run_kiln(*submit, "sleepy.py", env=eve).stdout)["id"]
    _wait_until_running(eve, run_id)
    elsewhere = {**eve, "KILN_DATA_DIR": str(tmp_path / "elsewhere")}

    canceled = run_kiln_on_another_host(elsewhere, "run", "cancel", run_id, "--json")

    assert canceled.returncode == 0, canceled.stderr
    assert json.loads(canceled.stdout) == {"id": run_id, "status": "Canceled"}
    shown = json.loads(run_kiln("run", "show", run_id, "--json", env=eve).stdout)
    assert shown["status"] == "Canceled"
    log = run_kiln("run", "logs", run_id, env=eve).stdout
    assert "canceling: SIGTERM" in log and f"run {run_id}: Canceled" in log
