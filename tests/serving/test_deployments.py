"""Deployments on 127.0.0.1 in real environments: create, score, update without downtime,
failures, a supervisor that dies, garbage collection, and a scikit-learn model trained by a run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path

import pytest

from kiln import catalog, images
from kiln.accounts import audit_entries, local_actor
from kiln.cache import MARKER, Cache
from kiln.environment.validation import validate_definition
from kiln.errors import Conflict, InvalidRequest, KilnError, NotFound
from kiln.fastexec import pointer_path
from kiln.registry import deployment_queries
from kiln.registry.engine import write_transaction
from kiln.runs import processes
from kiln.sdk.runs import Experiment, ScriptRunConfig
from kiln.sdk.serving import InferenceConfig, LocalWebservice, Model, Webservice
from kiln.serving import deployments, specs
from kiln.serving.specs import SpecRequest
from kiln.workspace import Workspace
from kilntesting.images import BaseImage
from kilntesting.runs import kiln_cli, write_script
from kilntesting.serving import deployment_containers
from kilntesting.serving import post as _post

SCORE = """
    import json, os, socket
    def init():
        global model
        model = open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.txt")).read()
        if model == "broken":
            raise RuntimeError("cannot load this model")
    def run(raw_data):
        return {"model": model, "input": json.loads(raw_data) if raw_data else None, "worker": f"{socket.gethostname()}:{os.getpid()}"}
"""


def _model(ws: Workspace, tmp_path: Path, text: str) -> Model:
    folder = tmp_path / f"model-{text}"
    folder.mkdir()
    (folder / "model.txt").write_text(text)
    return Model.register(ws, folder / "model.txt", "m")


def _in_containers(
    kind: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> bool:
    """True for the "container" kind, with the test base image as the workspace default (``py``
    names none): the same test runs on a container deployment."""
    if kind != "container":
        return False
    base: BaseImage = request.getfixturevalue("base_image")
    monkeypatch.setenv("KILN_BASE_IMAGE", base.local_ref)
    return True


@pytest.fixture(params=["process", "container"])
def service(  # type: ignore[no-untyped-def]
    project: Workspace,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
):
    write_script(tmp_path / "serve", "score.py", SCORE)
    model = _model(project, tmp_path, "one")
    inference = InferenceConfig("score.py", tmp_path / "serve", "py")
    container = _in_containers(request.param, request, monkeypatch)
    config = LocalWebservice.deploy_configuration(workers=2, container=container)
    web = Model.deploy(project, "svc", [model], inference, config)
    web.wait_for_deployment()
    yield web
    web.delete()
    if container:
        assert deployment_containers(project, "svc") == []


def test_a_deployment_serves_and_outlives_its_command(
    project: Workspace, service: Webservice
) -> None:
    uri = service.scoring_uri
    assert uri is not None and uri.startswith("http://127.0.0.1:")
    assert service.run({"x": 1})["input"] == {"x": 1}
    assert service.run({"x": 1})["model"] == "one"
    pids: set[int] = set()
    for _ in range(400):  # two workers share the socket; the kernel picks, unevenly
        pids.add(service.run({})["worker"])
        if len(pids) == 2:
            break
    assert len(pids) == 2  # in two processes (or containers) on the one socket
    logs = service.get_logs()
    assert "POST /score 200" in logs and '{"x": 1}' not in logs  # bodies never logged
    assert service.state == "Healthy"


def test_a_serving_supervisor_keeps_its_record_fresh(
    project: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its heartbeat moves the record's updated_at while nothing else changes, so a machine that
    cannot look for the process (another host) can tell a silent one (shown Unknown)."""
    from kiln.serving import deployments

    monkeypatch.setenv(deployments.HEARTBEAT_VARIABLE, "0.3")
    write_script(tmp_path / "serve", "score.py", SCORE)
    model = _model(project, tmp_path, "one")
    inference = InferenceConfig("score.py", tmp_path / "serve", "py")
    web = Model.deploy(project, "beats", [model], inference, LocalWebservice.deploy_configuration())
    try:
        web.wait_for_deployment()
        first = deployments.get(project, "beats").updated_at
        deadline = time.monotonic() + 30
        while deployments.get(project, "beats").updated_at == first:
            assert time.monotonic() < deadline, "the record was not refreshed"
            time.sleep(0.1)
        assert deployments.get(project, "beats").state == "Healthy"
    finally:
        web.delete()


@pytest.mark.parametrize("kind", ["process", "container"])
def test_garbage_collection_leaves_a_served_environment_alone(
    project: Workspace,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    request: pytest.FixtureRequest,
) -> None:
    # A cache of its own: `gc --max-size 0` would take other tests' builds from the shared one.
    private = tmp_path / "private-cache"
    monkeypatch.setenv("KILN_CACHE_DIR", str(private))
    write_script(tmp_path / "serve", "score.py", SCORE)
    model = _model(project, tmp_path, "gc")
    container = _in_containers(kind, request, monkeypatch)
    config = LocalWebservice.deploy_configuration(container=container)
    inference = InferenceConfig("score.py", tmp_path / "serve", "py")
    web = Model.deploy(project, "gc", [model], inference, config)
    try:
        web.wait_for_deployment()
        record = catalog.get(project, "py")
        build_hash = (images.image_record(project, record) if container else record).build_hash
        key = json.loads(pointer_path(private, build_hash).read_text())["key"]
        cache = Cache(private)
        assert cache.holders(key) >= 1
        gc = kiln_cli(project, private, "cache", "gc", "--max-size", "0", "--json")
        assert gc.returncode == 0, gc.stderr
        assert (cache.path(key) / MARKER).exists()
        assert web.run({"x": 2})["input"] == {"x": 2}
    finally:
        web.delete()
    # Once the service is gone, nothing holds it.
    assert cache.holders(key) == 0


def test_update_switches_models_without_refusing_a_request(
    project: Workspace, service: Webservice, tmp_path: Path
) -> None:
    uri = service.scoring_uri
    assert uri is not None
    statuses: list[int] = []
    models_seen: list[str] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            try:
                status, body = _post(uri)
            except OSError:  # refused or reset: exactly what an update must never cause
                status, body = -1, b""
            statuses.append(status)
            if status == 200:
                models_seen.append(json.loads(body)["model"])

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        time.sleep(0.3)
        service.update(models=[_model(project, tmp_path, "two")])
        time.sleep(0.3)
    finally:
        stop.set()
        thread.join()
    assert statuses and set(statuses) == {200}
    assert models_seen[0] == "one" and models_seen[-1] == "two"
    assert service.scoring_uri == uri  # same socket, same address
    # A broken update keeps the old version serving and says why.
    with pytest.raises(KilnError, match="generation 2 still serves"):
        service.update(models=[_model(project, tmp_path, "broken")])
    assert service.run({})["model"] == "two"
    assert "cannot load this model" in service.get_logs()


@pytest.mark.parametrize("kind", ["process", "container"])
def test_an_init_failure_fails_the_deployment_with_its_traceback(
    project: Workspace,
    tmp_path: Path,
    cache_dir: Path,
    kind: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_script(tmp_path / "serve", "score.py", SCORE)
    _model(project, tmp_path, "broken")
    container = ["--container"] if _in_containers(kind, request, monkeypatch) else []
    result = kiln_cli(
        project,
        cache_dir,
        "deploy",
        "create",
        "-n",
        "bad",
        "--model",
        "m",
        "--entry-script",
        "score.py",
        "-d",
        str(tmp_path / "serve"),
        "--env",
        "py",
        "--json",
        *container,
    )
    assert result.returncode == 1
    info = json.loads(result.stdout)
    assert info["state"] == "Failed" and "init()" in info["error"]
    logs = kiln_cli(project, cache_dir, "deploy", "logs", "bad").stdout
    assert "RuntimeError: cannot load this model" in logs and "Traceback" in logs
    assert kiln_cli(project, cache_dir, "deploy", "delete", "bad").returncode == 0


def test_a_dead_supervisor_is_reported_dead_and_its_workers_stop(
    project: Workspace, service: Webservice
) -> None:
    record = deployments.get(project, "svc")
    assert record.supervisor is not None
    os.kill(int(record.supervisor.split(":")[1]), signal.SIGKILL)
    deadline = time.monotonic() + 30
    while service.state != "Dead":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    uri = service.scoring_uri
    assert uri is not None
    deadline = time.monotonic() + 30
    while True:  # the workers follow their supervisor
        try:
            _post(uri)
        except OSError:
            break
        assert time.monotonic() < deadline, "workers kept serving without a supervisor"
        time.sleep(0.1)


def test_cli_create_list_show_delete(project: Workspace, tmp_path: Path, cache_dir: Path) -> None:
    write_script(tmp_path / "serve", "score.py", SCORE)
    _model(project, tmp_path, "cli")
    create = ["deploy", "create", "-n", "web", "--model", "m:1", "--entry-script", "score.py"]
    create += ["-d", str(tmp_path / "serve"), "--env", "py", "--json"]
    created = kiln_cli(project, cache_dir, *create)
    assert created.returncode == 0, created.stderr
    info = json.loads(created.stdout)
    assert info["state"] == "Healthy"
    status, body = _post(info["scoring_uri"], b'{"k": 2}')
    assert status == 200 and json.loads(body)["input"] == {"k": 2}
    listed = json.loads(kiln_cli(project, cache_dir, "deploy", "list", "--json").stdout)
    assert [(d["name"], d["state"]) for d in listed] == [("web", "Healthy")]
    shown = json.loads(kiln_cli(project, cache_dir, "deploy", "show", "web", "--json").stdout)
    assert shown["models"] == ["m:1"] and shown["environment"] == "py:1"
    assert shown["scoring_uri"] == info["scoring_uri"]
    assert shown["created_by"] == local_actor()
    text = kiln_cli(project, cache_dir, "deploy", "show", "web").stdout
    assert "created by:" in text and local_actor() in text
    half = kiln_cli(project, cache_dir, "deploy", "update", "web", "-d", str(tmp_path))
    assert half.returncode == 2 and "--entry-script" in half.stderr
    _model(project, tmp_path, "cli-two")
    updated = kiln_cli(project, cache_dir, "deploy", "update", "web", "--model", "m:2", "--json")
    assert updated.returncode == 0, updated.stderr
    after = json.loads(updated.stdout)
    assert (after["models"], after["serving_generation"]) == (["m:2"], 2)
    assert after["entry_script"] == "score.py" and after["environment"] == "py:1"  # kept
    assert json.loads(_post(info["scoring_uri"])[1])["model"] == "cli-two"
    again = kiln_cli(project, cache_dir, *create)
    assert again.returncode == 4 and "kiln deploy update web" in again.stderr
    deleted = kiln_cli(project, cache_dir, "deploy", "delete", "web", "--json")
    assert json.loads(deleted.stdout) == {"name": "web", "deleted": True}
    with pytest.raises(OSError):
        _post(info["scoring_uri"])
    assert json.loads(kiln_cli(project, cache_dir, "deploy", "list", "--json").stdout) == []
    trail = [(e["actor"], e["action"]) for e in audit_entries(project) if e["object"] == "web"]
    actions = ["deployment.delete", "deployment.update", "deployment.create"]  # newest first
    assert trail == [(local_actor(), action) for action in actions]


def test_deployment_records_on_both_databases(workspace: Workspace) -> None:
    """What create, get, set_fields, update and delete do with the record, on SQLite and
    PostgreSQL, without starting a service (the tests above start real ones)."""
    spec = deployments.DeploymentSpec(["m:1"], "score.py", "s" * 64, "py", "1")
    with pytest.raises(NotFound, match="no deployment 'web'"):
        deployments.get(workspace, "web")
    assert deployments.list_deployments(workspace) == []
    with write_transaction(workspace.engine) as connection:  # served by this very process
        deployment_queries.insert_deployment(
            connection,
            name="web",
            state=deployments.HEALTHY,
            spec=json.dumps(asdict(spec)),
            host="127.0.0.1",
            port=None,
            supervisor=processes.watcher_token(),
            now=1.0,
        )
    with pytest.raises(Conflict, match="exists and is running"):
        deployments.create(workspace, "web", spec)
    deployments.set_fields(workspace, "web", port=8123, applied_generation=1)
    record = deployments.get(workspace, "web")
    assert (record.spec, record.state, record.generation) == (spec, deployments.HEALTHY, 1)
    assert record.scoring_uri == "http://127.0.0.1:8123/score" and record.updated_at > 1.0
    dead = f"{processes.host_of(processes.watcher_token())}:{_ended_pid()}:0"
    deployments.set_fields(workspace, "web", supervisor=dead)
    assert [r.state for r in deployments.list_deployments(workspace)] == [deployments.DEAD]
    with pytest.raises(Conflict, match="'web' is dead; update it once it is healthy"):
        deployments.update(workspace, "web", spec)
    deployments.delete(workspace, "web")  # nothing left to stop
    assert deployments.list_deployments(workspace) == []


def _ended_pid() -> int:
    """The id of a process that has ended (and been reaped)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_specs_fill_defaults_and_updates_keep_what_they_do_not_name(
    project: Workspace, tmp_path: Path
) -> None:
    serve = tmp_path / "serve"
    write_script(serve, "score.py", SCORE)
    _model(project, tmp_path, "one")
    _model(project, tmp_path, "two")
    request = SpecRequest(models=["m:1"], entry_script="score.py", source_directory=serve)
    first = specs.new_spec(project, replace(request, environment="py"))
    assert (first.models, first.entry_script, first.env_name, first.env_version) == (
        ["m:1"],
        "score.py",
        "py",
        "1",
    )
    assert (first.workers, first.environment_variables, first.show_errors) == (1, {}, False)
    assert first.max_body_bytes == deployments.DEFAULT_MAX_BODY == 100 * 2**20
    tuned = specs.updated_spec(
        project,
        first,
        SpecRequest(workers=3, environment_variables={"KEY": "${SECRET}"}, show_errors=True),
    )
    assert tuned == replace(
        first, workers=3, environment_variables={"KEY": "${SECRET}"}, show_errors=True
    )
    assert specs.updated_spec(project, tuned, SpecRequest(models=["m"])) == replace(
        tuned,
        models=["m:2"],  # a name alone: its newest version
    )
    cleared = specs.updated_spec(
        project, tuned, SpecRequest(environment_variables={}, max_body_bytes=10)
    )
    assert cleared == replace(tuned, environment_variables={}, max_body_bytes=10)
    write_script(serve, "score.py", SCORE + "\n# new code\n")
    code = specs.updated_spec(
        project, tuned, SpecRequest(entry_script="score.py", source_directory=serve)
    )
    assert code.source_snapshot != tuned.source_snapshot
    assert code == replace(tuned, source_snapshot=code.source_snapshot)  # env, models kept
    with pytest.raises(InvalidRequest, match="`source_directory` needs `entry_script`"):
        specs.updated_spec(project, tuned, SpecRequest(source_directory=serve))
    with pytest.raises(InvalidRequest, match="`workers`: 0 must be at least 1"):
        specs.updated_spec(project, tuned, SpecRequest(workers=0))
    with pytest.raises(InvalidRequest, match="`models`: deploy at least one"):
        specs.new_spec(project, replace(request, models=[]))
    with pytest.raises(NotFound, match="no model m:7"):
        specs.new_spec(project, replace(request, models=["m:7"]))


SKLEARN_ENV = {
    "name": "sk",
    "python": {"version": "3.11", "pip": {"packages": ["scikit-learn==1.9.1", "joblib"]}},
}
TRAIN = """
    import json, os
    from importlib import metadata
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from kiln import Run
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(X, y)
    Run.get_context().log("accuracy", model.score(X, y))
    os.makedirs("outputs", exist_ok=True)
    joblib.dump(model, "outputs/model.joblib")
    packages = sorted(f"{d.metadata['Name'].lower()}=={d.version}" for d in metadata.distributions())
    print("PACKAGES", json.dumps(packages))
"""
SCORE_SKLEARN = """
    import json, os
    from importlib import metadata
    import joblib
    def init():
        global model
        model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.joblib"))
    def run(raw_data):
        data = json.loads(raw_data)
        if "packages" in data:
            return sorted(f"{d.metadata['Name'].lower()}=={d.version}" for d in metadata.distributions())
        return model.predict(data["data"]).tolist()
"""


def test_a_model_trained_by_a_run_is_served_in_the_same_environment(
    project: Workspace, tmp_path: Path
) -> None:
    catalog.register(project, validate_definition(SKLEARN_ENV))
    write_script(tmp_path / "train", "train.py", TRAIN)
    run = Experiment(project, "iris").submit(
        ScriptRunConfig(source_directory=tmp_path / "train", script="train.py", environment="sk")
    )
    run.wait_for_completion()
    log = (project.root / "runs" / run.id / "output.log").read_text()
    trained_with = json.loads(log.split("PACKAGES ", 1)[1].splitlines()[0])
    model = run.register_model("iris", "outputs/model.joblib")
    write_script(tmp_path / "serve", "score.py", SCORE_SKLEARN)
    service = Model.deploy(
        project, "iris", [model], InferenceConfig("score.py", tmp_path / "serve", "sk")
    )
    try:
        service.wait_for_deployment()
        assert service.run({"data": [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]}) == [0, 2]
        # The user packages are identical: Kiln's runtime reaches the environment through
        # PYTHONPATH, never by installing anything into it.
        assert service.run({"packages": True}) == trained_with
        assert "kiln" not in " ".join(trained_with)
    finally:
        service.delete()
