"""Issue 15, items 2 and 10: deployment arguments are checked before anything is recorded
(through the real CLI), ``--workers`` has a bound, and ``deploy delete`` reports success only
once every process of the service is gone."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from kiln.errors import InvalidRequest, KilnError
from kiln.registry import deployment_queries
from kiln.registry.engine import write_transaction
from kiln.runs import processes
from kiln.sdk.serving import InferenceConfig, LocalWebservice, Model
from kiln.serving import deployments, specs
from kiln.serving.specs import SpecRequest
from kiln.workspace import Workspace
from kilntesting.runs import kiln_cli, write_script

SCORE = """
    def init():
        pass
    def run(raw_data):
        return {"ok": True}
"""
# init() leaves a process behind that ignores SIGTERM: the service is not gone until it is.
SCORE_WITH_A_STUBBORN_CHILD = """
    import os, subprocess, sys
    def init():
        child = subprocess.Popen([sys.executable, "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"])
        with open(os.environ["CHILD_PID_FILE"], "w") as out:
            out.write(str(child.pid))
    def run(raw_data):
        return {"ok": True}
"""


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield listener.getsockname()[1]


def _create(project: Workspace, cache: Path, serve: Path, *extra: str) -> list[str]:
    write_script(serve, "score.py", SCORE)
    (project.root.parent / "model.txt").write_text("m")
    registered = kiln_cli(
        project, cache, "model", "register", "-n", "m", "-p", str(project.root.parent / "model.txt")
    )
    assert registered.returncode == 0, registered.stderr
    return ["deploy", "create", "-n", "web", "--model", "m", "--entry-script", "score.py",
            "-d", str(serve), "--env", "py", "--no-wait", *extra]  # fmt: skip


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--workers", "0"], "`workers`: 0 must be at least 1"),
        (["--workers", "-3"], "`workers`: -3 must be at least 1"),
        ([f"--workers={specs.max_workers() + 1}"], f"is more than {specs.max_workers()}"),
        (["--env-var", "1A=x"], "`environment_variables`: name '1A' is invalid"),
        (["--env-var", "A-B=x"], "`environment_variables`: name 'A-B' is invalid"),
        (["--env-var", "API_TOKEN=abc123456"], "API_TOKEN looks like a secret stored in plain"),
        (["--max-body-mb", "-1"], "`max_body_bytes`: -1048576 must be positive"),
        (["--max-body-mb", "0"], "`max_body_bytes`: 0 must be positive"),
        (["--max-body-mb", "nan"], "`--max-body-mb`: nan is not a number"),
        (["--host", "256.1.1.1"], "`host`: '256.1.1.1' is neither an IP address nor a host"),
        (["--host", "bad host"], "`host`: 'bad host' is neither"),
        (["--host", "192.0.2.1"], "`host`: cannot listen on 192.0.2.1"),  # not this machine's
        (["--port", "70000"], "`port`: 70000 is not a port number"),
    ],
)
def test_bad_deployment_arguments_are_refused_and_nothing_is_recorded(
    project: Workspace, tmp_path: Path, cache_dir: Path, arguments: list[str], message: str
) -> None:
    create = _create(project, cache_dir, tmp_path / "serve", *arguments)
    result = kiln_cli(project, cache_dir, *create)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    _assert_nothing_recorded(project, cache_dir)


def test_a_port_in_use_is_refused_before_a_record_is_written(
    project: Workspace, tmp_path: Path, cache_dir: Path, busy_port: int
) -> None:
    create = _create(project, cache_dir, tmp_path / "serve", "--port", str(busy_port))
    result = kiln_cli(project, cache_dir, *create)
    assert result.returncode == 2, result.stderr
    assert f"`port`: {busy_port} on 127.0.0.1 is in use; pick another" in result.stderr
    _assert_nothing_recorded(project, cache_dir)


def _assert_nothing_recorded(project: Workspace, cache: Path) -> None:
    listed = kiln_cli(project, cache, "deploy", "list", "--json")
    assert json.loads(listed.stdout) == []  # no Failed record left behind
    assert not (project.root / "deployments").exists()


def test_more_workers_than_the_bound_need_the_explicit_flag(
    project: Workspace, tmp_path: Path, cache_dir: Path
) -> None:
    many = str(specs.max_workers() + 1)
    create = _create(project, cache_dir, tmp_path / "serve", "--workers", many)
    refused = kiln_cli(project, cache_dir, *create)
    assert refused.returncode == 2 and "--allow-many-workers" in refused.stderr
    # With the flag the workers pass; the (missing) environment is what stops this one.
    create[create.index("py")] = "no-such-env"
    allowed = kiln_cli(project, cache_dir, *create, "--allow-many-workers")
    assert allowed.returncode == 3 and "no environment no-such-env" in allowed.stderr, (
        allowed.stderr
    )
    request = SpecRequest(workers=specs.max_workers() + 1)
    with pytest.raises(InvalidRequest, match="allow_many_workers=True"):
        specs.check_settings(request)
    specs.check_settings(SpecRequest(workers=specs.max_workers() + 1, allow_many_workers=True))


def test_host_names_and_addresses_of_this_machine_are_accepted() -> None:
    for host in ("127.0.0.1", "0.0.0.0", "localhost"):
        specs.check_address(host, None)
    with pytest.raises(InvalidRequest, match="`host`: '-x' is neither"):
        specs.check_address("-x", None)


def _alive(pid: int) -> bool:
    """Running, and not a zombie nobody reaped yet."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_delete_reports_success_only_once_every_process_is_gone(
    project: Workspace, tmp_path: Path, cache_dir: Path
) -> None:
    pid_file = tmp_path / "child.pid"
    create = _create(
        project, cache_dir, tmp_path / "serve", "--env-var", f"CHILD_PID_FILE={pid_file}"
    )
    write_script(tmp_path / "serve", "score.py", SCORE_WITH_A_STUBBORN_CHILD)
    create.remove("--no-wait")
    created = kiln_cli(project, cache_dir, *create)
    assert created.returncode == 0, created.stderr
    child = int(pid_file.read_text())
    assert _alive(child)
    deleted = kiln_cli(project, cache_dir, "deploy", "delete", "web")
    assert deleted.returncode == 0, deleted.stderr
    assert "deleted deployment web" in deleted.stdout
    assert not _alive(child), "delete said deleted while a process of the service ran"


def test_processes_that_will_not_die_are_named_and_the_record_kept(project: Workspace) -> None:
    # A stand-in supervisor in a session of its own, and a signal sender that never delivers.
    sleeper = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True
    )
    try:
        time.sleep(0.1)  # its start time is readable
        spec = deployments.DeploymentSpec(["m:1"], "score.py", "s" * 64, "py", "1")
        with write_transaction(project.engine) as connection:
            deployment_queries.insert_deployment(
                connection,
                name="web",
                state=deployments.HEALTHY,
                spec=json.dumps(spec.__dict__),
                host="127.0.0.1",
                port=None,
                supervisor=processes.watcher_token(sleeper.pid),
                now=1.0,
            )
        with pytest.raises(KilnError, match=rf"is not deleted: its processes {sleeper.pid} are"):
            deployments.delete(project, "web", timeout=0.2, send=lambda pid, signum: None)
        assert deployments.get(project, "web").name == "web"  # kept: delete can be run again
        deployments.delete(project, "web", timeout=5.0)  # real signals this time
        assert sleeper.wait(timeout=5) != 0 and deployments.list_deployments(project) == []
    finally:
        sleeper.kill()
        sleeper.wait()


def test_the_sdk_refuses_bad_settings_before_it_replaces_a_deployment(
    project: Workspace, tmp_path: Path
) -> None:
    write_script(tmp_path / "serve", "score.py", SCORE)
    (tmp_path / "model.txt").write_text("m")
    model = Model.register(project, tmp_path / "model.txt", "m")
    spec = deployments.DeploymentSpec(["m:1"], "score.py", "s" * 64, "py", "1")
    with write_transaction(project.engine) as connection:  # a stopped one, to be overwritten
        deployment_queries.insert_deployment(
            connection,
            name="web",
            state=deployments.STOPPED,
            spec=json.dumps(spec.__dict__),
            host="127.0.0.1",
            port=None,
            supervisor=None,
            now=1.0,
        )
    inference = InferenceConfig("score.py", tmp_path / "serve", "py")
    for options, message in [
        ({"workers": 0}, "`workers`: 0 must be at least 1"),
        ({"workers": specs.max_workers() + 1}, "allow_many_workers=True"),
        ({"environment_variables": {"1A": "x"}}, "name '1A' is invalid"),
        ({"max_request_body_bytes": -1}, "`max_body_bytes`: -1 must be positive"),
        ({"host": "256.1.1.1"}, "`host`: '256.1.1.1' is neither"),
    ]:
        config = LocalWebservice.deploy_configuration(**options)
        with pytest.raises(InvalidRequest, match=message):
            Model.deploy(project, "web", [model], inference, config, overwrite=True)
        assert deployments.get(project, "web").state == deployments.STOPPED  # still there
