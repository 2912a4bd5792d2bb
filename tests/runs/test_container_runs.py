"""Runs on the container target (real podman, the session's registry, the test base image),
and the local target's behaviour tests run on both targets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml

from kiln.compute.container import container_name
from kiln.runs.core import list_runs
from kiln.runs.store import RunStore
from kiln.sdk.runs import Experiment, Run, ScriptRunConfig
from kiln.workspace import Workspace
from kilntesting.cli import KILN
from kilntesting.images import EngineStore, ImageRegistry, container_exists
from kilntesting.runs import kiln_cli, run_json, write_script

TRAIN = """
    import os, sys
    from kiln import Run
    run = Run.get_context()
    print("args", sys.argv[1:], "offline" if run.offline else "online", sys.executable, flush=True)
    print("to stderr", file=sys.stderr, flush=True)
    run.log("accuracy", 0.5)
    run.log("accuracy", 0.75)
    run.log_metrics({"loss": 0.25})
    os.makedirs("outputs/sub", exist_ok=True)
    open("outputs/model.txt", "w").write("weights")
    open("outputs/sub/notes.txt", "w").write("notes")
"""

SLEEPY = """
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    print("child", child.pid, flush=True)
    time.sleep(600)
"""


class Target(NamedTuple):
    ws: Workspace
    address: str


@pytest.fixture(params=["local", "container"])
def target(request: pytest.FixtureRequest) -> Target:
    """The ``py`` environment's workspace for each target: the container's has a registry and
    a default base image (``py`` names none)."""
    fixture = "project" if request.param == "local" else "image_project"
    return Target(request.getfixturevalue(fixture), request.param)


def _wait_for(predicate: Callable[[], bool], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _only_run(ws: Workspace) -> str:
    store = RunStore(ws)
    try:
        [record] = store.find()
    finally:
        store.close()
    return record.id


def _digest_of(image: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{.Digest}}", image],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    return done.stdout.strip()


def _submit_train(
    ws: Workspace, cache: Path, target: str, *extra: str, env: str = "py"
) -> subprocess.CompletedProcess[str]:
    """``kiln run submit --target TARGET ... train.py EXTRA`` of the TRAIN script in ``env``."""
    src = ws.path / "src"
    write_script(src, "train.py", TRAIN)
    return kiln_cli(
        ws, cache, "run", "submit", "--target", target, "--env", env, "-d", str(src), "train.py",
        *extra,
    )  # fmt: skip


def test_a_run_streams_its_log_and_records_metrics_and_outputs(
    target: Target, cache_dir: Path
) -> None:
    result = _submit_train(target.ws, cache_dir, target.address, "--", "--alpha", "0.5")
    assert result.returncode == 0, result.stderr
    assert "args ['--alpha', '0.5'] online" in result.stdout
    assert "to stderr" in result.stdout
    info = run_json(target.ws, cache_dir, _only_run(target.ws))
    assert info["status"] == "Completed" and info["exit_code"] == 0
    assert info["target"] == target.address
    assert info["metrics"] == {"accuracy": [0.5, 0.75], "loss": 0.25}
    assert info["files"] == ["outputs/model.txt", "outputs/sub/notes.txt", "logs/output.log"]
    log = kiln_cli(target.ws, cache_dir, "run", "logs", info["id"]).stdout
    assert "to stderr" in log
    if target.address == "local":
        assert info["image"] is None
        return
    # In the image's own interpreter, and the run names the image by its digest.
    assert "/opt/kiln/env/bin/python" in result.stdout
    image = info["image"]
    assert image["reference"].startswith(
        f"{target.ws.image_registry.removeprefix('http://')}/kiln/env:"
    )
    assert _digest_of(f"localhost/kiln/env@{image['digest']}") == image["digest"]
    shown = kiln_cli(target.ws, cache_dir, "run", "show", info["id"]).stdout
    assert f"image digest: {image['digest']}" in shown
    assert not container_exists(container_name(info["id"]))


def test_a_failing_script_fails_the_run_with_its_exit_code(target: Target, cache_dir: Path) -> None:
    src = target.ws.path / "src"
    write_script(src, "bad.py", "import sys\nprint('about to fail')\nsys.exit(3)\n")
    result = kiln_cli(
        target.ws, cache_dir, "run", "submit", "--target", target.address,
        "--env", "py", "-d", str(src), "bad.py",
    )  # fmt: skip
    assert result.returncode == 3
    assert "about to fail" in result.stdout
    info = run_json(target.ws, cache_dir, _only_run(target.ws))
    assert info["status"] == "Failed" and info["exit_code"] == 3
    assert info["error"] == "the script exited with code 3"


def _sleepy_run(target: Target, tmp_path: Path) -> tuple[Run, int]:
    """A detached run (SDK) whose script and a child of it sleep; the child's pid."""
    src = tmp_path / "src"
    write_script(src, "sleepy.py", SLEEPY)
    config = ScriptRunConfig(
        source_directory=src, script="sleepy.py", environment="py", compute_target=target.address
    )
    run = Experiment(target.ws, "e").submit(config)
    log = target.ws.root / "runs" / run.id / "output.log"
    _wait_for(lambda: log.exists() and "child " in log.read_text())
    return run, int(log.read_text().split("child ", 1)[1].split()[0])


def _dead(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


def _nothing_left(target: Target, run: Run, child: int) -> bool:
    """The script and its child are gone: the process group, or the container."""
    if target.address == "local":
        return _dead(child)
    return not container_exists(container_name(run.id))


def test_cancel_stops_the_script_and_everything_it_started(target: Target, tmp_path: Path) -> None:
    run, child = _sleepy_run(target, tmp_path)
    run.cancel()
    assert run.get_status() == "Canceled"
    _wait_for(lambda: _nothing_left(target, run, child), timeout=30)


def test_a_killed_watcher_leaves_nothing_running(target: Target, tmp_path: Path) -> None:
    run, child = _sleepy_run(target, tmp_path)
    store = RunStore(target.ws)
    watcher = store.get(run.id).watcher
    store.close()
    assert watcher is not None
    os.kill(int(watcher.split(":")[1]), signal.SIGKILL)
    _wait_for(lambda: list_runs(target.ws, experiment="e")[0].status != "Running", timeout=30)
    details = run.get_details()
    assert details["status"] == "Failed"
    assert "stopped before the run ended" in details["error"]
    _wait_for(lambda: _nothing_left(target, run, child), timeout=30)


def test_the_sdk_shows_the_image_a_container_run_ran_in(
    image_project: Workspace, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    write_script(src, "train.py", TRAIN)
    config = ScriptRunConfig(
        source_directory=src, script="train.py", environment="py", compute_target="container"
    )
    run = Experiment(image_project, "e").submit(config)
    run.wait_for_completion()
    details = run.get_details()
    assert details["status"] == "Completed"
    assert details["image"]["digest"].startswith("sha256:")
    assert details["image"]["reference"].startswith(("localhost/kiln/env:", "127.0.0.1:"))
    assert run.get_metrics()["loss"] == 0.25


def _register(ws: Workspace, cache: Path, definition: dict[str, object]) -> None:
    path = ws.path / f"{definition['name']}.yml"
    path.write_text(yaml.safe_dump(definition))
    result = kiln_cli(ws, cache, "env", "register", "-f", str(path))
    assert result.returncode == 0, result.stderr


def _register_on_base(ws: Workspace, cache: Path, name: str, base_image: str) -> None:
    definition = {"name": name, "python": {"version": "3.11"}, "docker": {"base_image": base_image}}
    _register(ws, cache, definition)


def test_variables_reach_the_script_and_a_secret_never_a_command_line(
    image_project: Workspace, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cret-value-7731"
    monkeypatch.setenv("CTR_TEST_TOKEN", secret)
    _register(
        image_project,
        cache_dir,
        {
            "name": "withvars",
            "python": {"version": "3.11"},
            "environment_variables": {"GREETING": "hello", "TOKEN": "${CTR_TEST_TOKEN}"},
        },
    )
    src = image_project.path / "src"
    write_script(
        src,
        "vars.py",
        """
        import os, pathlib, time
        print("greeting", os.environ["GREETING"], "token ok", os.environ["TOKEN"] == "s3cret-value-7731", flush=True)
        pathlib.Path("started").write_text("yes")
        while not pathlib.Path("go").exists():
            time.sleep(0.05)
        """,
    )
    cli = subprocess.Popen(
        [*KILN, "run", "submit", "--target", "container", "--env", "withvars", "-d", str(src), "vars.py"],
        env={**os.environ, "KILN_WORKSPACE": str(image_project.path)},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    runs = image_project.root / "runs"
    _wait_for(lambda: any(runs.glob("*/work/started")))
    work = next(runs.glob("*/work/started")).parent
    # While it runs: the secret is on no process's command line (podman's included).
    lines = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                lines.append((entry / "cmdline").read_bytes())
            except OSError:
                continue
    assert any(b"--env\0TOKEN\0" in line for line in lines)
    assert not any(secret.encode() in line for line in lines)
    (work / "go").write_text("")
    out, err = cli.communicate(timeout=120)
    assert cli.returncode == 0, err
    assert "greeting hello token ok True" in out
    run_id = _only_run(image_project)
    log = kiln_cli(image_project, cache_dir, "run", "logs", run_id).stdout
    assert secret not in log
    # The image carries neither variable (its config is the build hash's, which leaves them
    # out): both reached the script at run time.
    digest = run_json(image_project, cache_dir, run_id)["image"]["digest"]
    config_env = subprocess.run(
        ["podman", "image", "inspect", "--format", "{{json .Config.Env}}",
         f"localhost/kiln/env@{digest}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "GREETING" not in config_env and "TOKEN" not in config_env


def test_reproduce_runs_the_exact_digest_pulling_it_when_it_is_gone(
    image_project: Workspace,
    cache_dir: Path,
    tmp_path: Path,
    engine_store: EngineStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = _submit_train(image_project, cache_dir, "container")
    assert first.returncode == 0, first.stderr
    original = run_json(image_project, cache_dir, _only_run(image_project))
    # A second machine: an empty engine store and an empty Kiln cache, the same workspace.
    second_cache = tmp_path / "second-cache"
    monkeypatch.setenv("CONTAINERS_STORAGE_CONF", engine_store.env["CONTAINERS_STORAGE_CONF"])
    again = kiln_cli(image_project, second_cache, "run", "reproduce", original["id"], "--json")
    assert again.returncode == 0, again.stderr
    reproduced = json.loads(again.stdout)
    assert reproduced["image"]["digest"] == original["image"]["digest"]
    assert reproduced["reproduces"] == original["id"]
    log = kiln_cli(image_project, second_cache, "run", "logs", reproduced["id"]).stdout
    assert "environment: pull" in log and "environment: install" not in log  # never rebuilt
    # The image leaves this machine's engine: reproduce pulls that digest from the registry.
    digest = original["image"]["digest"]
    subprocess.run(
        ["podman", "rmi", "--force", f"localhost/kiln/env@{digest}"],
        env=engine_store.environ(), capture_output=True, check=True,
    )  # fmt: skip
    third = kiln_cli(image_project, second_cache, "run", "reproduce", original["id"], "--json")
    assert third.returncode == 0, third.stderr
    assert json.loads(third.stdout)["image"]["digest"] == digest
    assert _digest_of(f"localhost/kiln/env@{digest}", engine_store.environ()) == digest


def test_an_image_neither_here_nor_in_the_registry_fails_the_reproduce_clearly(
    image_project: Workspace, cache_dir: Path
) -> None:
    result = _submit_train(image_project, cache_dir, "container")
    assert result.returncode == 0, result.stderr
    run_id = _only_run(image_project)
    # A digest no engine and no registry has (recorded by hand: the only fake in this file).
    missing = "sha256:" + "0" * 64
    store = RunStore(image_project)
    store.update(run_id, unless_finished=False, image_digest=missing)
    store.close()
    again = kiln_cli(image_project, cache_dir, "run", "reproduce", run_id, "--json")
    assert again.returncode != 0
    info = json.loads(again.stdout)
    assert info["status"] == "Failed"
    assert (
        f"the image {missing} this run must run in is neither on this machine nor in the image registry"
        in info["error"]
    )
    assert info["image"]["digest"] == missing


def test_named_container_targets_and_their_options(
    image_project: Workspace, cache_dir: Path
) -> None:
    ok = kiln_cli(image_project, cache_dir, "target", "add", "gpu", "container://?gpus=all")
    assert ok.returncode == 0, ok.stderr
    listed = json.loads(kiln_cli(image_project, cache_dir, "target", "list", "--json").stdout)
    assert [(t["name"], t["kind"]) for t in listed] == [("gpu", "container")]
    for bad, says in [
        ("container://?gpus=", "gpus must be 'all' or GPU indexes"),
        ("container://?cpus=2", "unknown option 'cpus'"),
        ("container://a/b", "not a container target's address"),
    ]:
        refused = kiln_cli(image_project, cache_dir, "target", "add", "x", bad)
        assert refused.returncode == 2
        assert (
            says in refused.stderr and "container[://CONNECTION][?gpus=all|0,1]" in refused.stderr
        )
        assert len(refused.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("address", "engine_says"),
    [
        # This machine has no GPU and no NVIDIA CDI spec: the device cannot be set up.
        ("container://?gpus=all", "nvidia.com/gpu=all"),
        # The options reach podman: an unknown remote connection is podman's own refusal.
        ("container://nosuch", '"nosuch" service destination not found'),
    ],
)
def test_a_container_the_engine_cannot_start_fails_the_run_with_its_message(
    image_project: Workspace, cache_dir: Path, address: str, engine_says: str
) -> None:
    result = _submit_train(image_project, cache_dir, address)
    assert result.returncode != 0
    info = run_json(image_project, cache_dir, _only_run(image_project))
    assert info["status"] == "Failed" and info["target"] == address
    assert info["error"].startswith("the container could not start: ")
    assert engine_says in info["error"]
    assert not container_exists(container_name(info["id"]))


def test_without_a_base_image_a_container_run_is_refused_naming_the_fix(
    project: Workspace, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KILN_BASE_IMAGE", raising=False)
    result = _submit_train(project, cache_dir, "container")
    assert result.returncode == 2
    assert "py:1 names no base image" in result.stderr
    assert "kiln init --base-image IMAGE" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    store = RunStore(project)
    assert store.find() == []
    store.close()


def test_the_local_target_points_an_image_environment_at_the_container_target(
    image_project: Workspace, cache_dir: Path
) -> None:
    _register_on_base(image_project, cache_dir, "imaged", str(image_project.config["base_image"]))
    result = _submit_train(image_project, cache_dir, "local", env="imaged")
    assert result.returncode != 0
    info = run_json(image_project, cache_dir, _only_run(image_project))
    assert "imaged:1 is built as an image" in info["error"]
    assert "`--target container`" in info["error"]


@pytest.mark.parametrize("podman", [None, "/nonexistent/podman"])
def test_without_a_usable_podman_a_container_run_is_refused_naming_the_fix(
    image_project: Workspace,
    cache_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    podman: str | None,
) -> None:
    if podman is None:  # no podman on PATH
        monkeypatch.delenv("KILN_PODMAN", raising=False)
        monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    else:  # KILN_PODMAN names no executable
        monkeypatch.setenv("KILN_PODMAN", podman)
    result = _submit_train(image_project, cache_dir, "container")
    assert result.returncode == 5
    assert len(result.stderr.strip().splitlines()) == 1
    if podman is None:
        assert "a run in the environment's image needs podman" in result.stderr
        assert "apt-get install podman" in result.stderr
    else:
        assert f"KILN_PODMAN={podman} is not an executable" in result.stderr
        assert "point it at podman, or unset it" in result.stderr
    store = RunStore(image_project)
    assert store.find() == []
    store.close()


def test_a_broken_engine_fails_the_run_naming_what_to_fix(
    image_project: Workspace, cache_dir: Path, tmp_path: Path
) -> None:
    # The image is there: the next run takes the warm path, which trusts it, and when podman
    # cannot make the container falls back to the full path, whose check says what to fix.
    warm = _submit_train(image_project, cache_dir, "container")
    assert warm.returncode == 0, warm.stderr
    broken = tmp_path / "containers.conf"
    broken.write_text("[engine\nnot toml\n")
    src = image_project.path / "src"
    result = subprocess.run(
        [*KILN, "run", "submit", "--json", "--target", "container", "--env", "py",
         "-d", str(src), "train.py"],
        env={**os.environ, "KILN_WORKSPACE": str(image_project.path),
             "KILN_CACHE_DIR": str(cache_dir), "CONTAINERS_CONF": str(broken)},
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    info = json.loads(result.stdout)
    assert info["status"] == "Failed"
    assert info["error"].startswith("podman does not work on this machine (")
    assert str(broken) in info["error"] and "`podman info` shows the problem" in info["error"]
    assert not container_exists(container_name(info["id"]))


def test_a_base_image_that_cannot_be_pulled_fails_the_run_with_the_reason(
    image_project: Workspace, cache_dir: Path, image_registry: ImageRegistry
) -> None:
    missing = f"{image_registry.host}/kiln-test/no-such-image:1"
    _register_on_base(image_project, cache_dir, "nobase", missing)
    result = _submit_train(image_project, cache_dir, "container", env="nobase")
    assert result.returncode == 1
    info = run_json(image_project, cache_dir, _only_run(image_project))
    assert info["status"] == "Failed" and info["image"] is None
    assert info["error"].startswith("the environment nobase:1 failed to build: ")
    assert f"base image {missing} cannot be pulled" in info["error"]
    assert not container_exists(container_name(info["id"]))
