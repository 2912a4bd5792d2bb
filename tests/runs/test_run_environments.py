"""Which environment a run gets, and what happens when it cannot be built. The tests that take
``anywhere`` run on a workspace folder and again on a real ``kiln server``."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from kiln import catalog
from kiln.compute.runfolder import run_folder
from kiln.environment import ANONYMOUS_NAME
from kiln.environment.validation import validate_definition
from kiln.runs.store import RunStore
from kiln.sdk.runs import Experiment, ScriptRunConfig
from kiln.workspace import Workspace
from kilntesting.builds import PackageIndex
from kilntesting.runs import kiln_cli, run_json, write_script

SHOW_ENV = "import os; print('GREETING', os.environ.get('GREETING'))\n"


def _only_run(ws: Workspace) -> str:
    store = RunStore(ws)
    try:
        [record] = store.find()
        return record.id
    finally:
        store.close()


def _show_env_with_file(
    project: Workspace, cache_dir: Path, name: str, text: str
) -> subprocess.CompletedProcess[str]:
    """`kiln run submit --env-file NAME` (holding ``text``) of a script printing GREETING."""
    src = project.path / "src"
    write_script(src, "show.py", SHOW_ENV)
    (project.path / name).write_text(text)
    return kiln_cli(
        *(project, cache_dir, "run", "submit", "--env-file", str(project.path / name)),
        *("-d", str(src), "show.py"),
    )


def test_a_command_job_yamls_inline_environment_is_run_in(
    project: Workspace, cache_dir: Path
) -> None:
    """Azure ML's most common anonymous environment: `environment:` inside a command job."""
    job = (
        "$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json\n"
        "command: python show.py\ncode: src\n"
        "environment:\n  conda_file:\n    dependencies: [python=3.11]\n"
        "environment_variables:\n  GREETING: from-the-job\n"
    )
    result = _show_env_with_file(project, cache_dir, "job.yml", job)
    assert result.returncode == 0, result.stderr
    assert "GREETING from-the-job" in result.stdout
    listed = json.loads(kiln_cli(project, cache_dir, "env", "list", "--anonymous", "--json").stdout)
    assert [e["tags"]["kiln.anonymous_of"] for e in listed if e["name"] == ANONYMOUS_NAME] == [
        "job"
    ]


def test_an_unregistered_definition_becomes_an_anonymous_version(
    project: Workspace, cache_dir: Path
) -> None:
    definition = (
        "name: scratch\npython:\n  version: '3.11'\nenvironment_variables:\n  GREETING: hello\n"
    )
    for _ in range(2):
        result = _show_env_with_file(project, cache_dir, "env.yml", definition)
        assert result.returncode == 0, result.stderr
        assert "GREETING hello" in result.stdout
    listed = json.loads(kiln_cli(project, cache_dir, "env", "list", "--json").stdout)
    assert ANONYMOUS_NAME not in [e["name"] for e in listed]  # hidden from the default list
    listed = json.loads(
        kiln_cli(
            project, cache_dir, "env", "list", "--anonymous", "--all-versions", "--json"
        ).stdout
    )
    anonymous = [e for e in listed if e["name"] == ANONYMOUS_NAME]
    assert len(anonymous) == 1  # same content, same version
    assert anonymous[0]["tags"]["kiln.anonymous_of"] == "scratch"
    version = anonymous[0]["version"]
    shown = kiln_cli(project, cache_dir, "env", "show", f"{ANONYMOUS_NAME}:{version}", "--json")
    assert json.loads(shown.stdout)["definition"]["environment_variables"] == {"GREETING": "hello"}
    assert catalog.list_records(project, name="scratch", include_curated=False) == []


def test_a_definition_registered_under_its_name_is_used_as_that_version(
    anywhere: Workspace, tmp_path: Path
) -> None:
    project = anywhere
    definition = validate_definition(
        {
            "name": "named",
            "python": {"version": "3.11"},
            "environment_variables": {"GREETING": "registered"},
        }
    )
    catalog.register(project, definition)
    write_script(tmp_path / "src", "show.py", SHOW_ENV)
    run = Experiment(project, "e").submit(
        ScriptRunConfig(source_directory=tmp_path / "src", script="show.py", environment=definition)
    )
    details = run.wait_for_completion()
    assert (details["environment"]["name"], details["environment"]["version"]) == ("named", "1")


def test_no_environment_means_the_curated_default(
    anywhere: Workspace, cache_dir: Path, tmp_path: Path
) -> None:
    project = anywhere
    write_script(tmp_path / "src", "show.py", "import sys; print(sys.version_info[:2])\n")
    result = kiln_cli(project, cache_dir, "run", "submit", "-d", str(tmp_path / "src"), "show.py")
    assert result.returncode == 0, result.stderr
    assert "(3, 11)" in result.stdout
    info = run_json(project, cache_dir, _only_run(project))
    assert info["environment"]["name"] == "Kiln-minimal-py311"


def test_a_build_failure_fails_the_run_with_the_build_log(
    anywhere: Workspace,
    cache_dir: Path,
    package_index: PackageIndex,
    tmp_path: Path,
) -> None:
    project = anywhere
    env_file = tmp_path / "broken.yml"
    env_file.write_text(
        "name: broken\npython:\n  version: '3.11'\n  pip:\n"
        f"    index_url: {package_index.url}\n    packages: [no-such-package==1.0]\n"
    )
    assert kiln_cli(project, cache_dir, "env", "register", "-f", str(env_file)).returncode == 0
    write_script(tmp_path / "src", "train.py", "print('never runs')\n")
    result = kiln_cli(
        project,
        cache_dir,
        "run",
        "submit",
        "--env",
        "broken",
        "-d",
        str(tmp_path / "src"),
        "train.py",
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr + result.stdout
    assert "never runs" not in result.stdout
    run_id = _only_run(project)
    info = run_json(project, cache_dir, run_id)
    assert info["status"] == "Failed"
    assert "broken:1 failed to build" in info["error"]
    assert "no-such-package" in info["error"]
    log = kiln_cli(project, cache_dir, "run", "logs", run_id).stdout
    assert "---- environment build log ----" in log and "no-such-package" in log


def test_reproduce_reuses_snapshot_and_environment(
    anywhere: Workspace, cache_dir: Path, tmp_path: Path
) -> None:
    project = anywhere
    src = tmp_path / "src"
    write_script(
        src, "train.py", "import sys; print('value', open('data.txt').read(), sys.argv[1:])\n"
    )
    (src / "data.txt").write_text("first")
    assert (
        kiln_cli(
            project,
            cache_dir,
            "run",
            "submit",
            "--env",
            "py",
            "-d",
            str(src),
            "train.py",
            "--",
            "x",
        ).returncode
        == 0
    )
    original = _only_run(project)
    (src / "data.txt").write_text("edited since")  # the source folder moved on
    catalog.register(
        project,
        validate_definition(
            {"name": "py", "python": {"version": "3.11"}, "environment_variables": {"A": "1"}}
        ),
    )
    result = kiln_cli(project, cache_dir, "run", "reproduce", original, "--json")
    assert result.returncode == 0, result.stderr
    again = json.loads(result.stdout)
    assert "value first ['x']" in result.stderr  # --json sends the script's output to stderr
    first = run_json(project, cache_dir, original)
    assert again["reproduces"] == original
    assert again["snapshot_digest"] == first["snapshot_digest"]
    assert again["environment"]["version"] == "1"  # not the newer py:2
    assert run_json(project, cache_dir, original)["environment"]["newer_versions"] == ["2"]


def test_named_compute_targets(anywhere: Workspace, cache_dir: Path, tmp_path: Path) -> None:
    project = anywhere
    assert (
        kiln_cli(project, cache_dir, "target", "add", "gpu", "ray://127.0.0.1:8265").returncode == 0
    )
    listed = json.loads(kiln_cli(project, cache_dir, "target", "list", "--json").stdout)
    assert [(t["name"], t["address"]) for t in listed] == [("gpu", "ray://127.0.0.1:8265")]
    bad = kiln_cli(project, cache_dir, "target", "add", "x", "127.0.0.1:8265")
    assert bad.returncode == 2 and "ray://HOST:PORT" in bad.stderr
    write_script(tmp_path / "src", "t.py", "print(1)\n")
    unknown = kiln_cli(
        project,
        cache_dir,
        "run",
        "submit",
        "--env",
        "py",
        "--target",
        "nowhere",
        "-d",
        str(tmp_path / "src"),
        "t.py",
    )
    assert unknown.returncode == 2 and "kiln target add nowhere" in unknown.stderr
    assert kiln_cli(project, cache_dir, "target", "remove", "gpu").returncode == 0
    assert json.loads(kiln_cli(project, cache_dir, "target", "list", "--json").stdout) == []


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_runs_are_recorded_in_a_postgresql_registry(workspace: Workspace, tmp_path: Path) -> None:
    catalog.register(workspace, validate_definition({"name": "py", "python": {"version": "3.11"}}))
    write_script(
        tmp_path / "src", "train.py", "from kiln import Run\nRun.get_context().log('m', 2)\n"
    )
    run = Experiment(workspace, "pg").submit(
        ScriptRunConfig(source_directory=tmp_path / "src", script="train.py", environment="py")
    )
    details = run.wait_for_completion()
    assert details["metrics"] == {"m": 2}
    assert [r.id for r in Experiment(workspace, "pg").get_runs()] == [run.id]


def test_reproduce_installs_the_lock_of_the_original_run(
    project: Workspace, cache_dir: Path, package_index: PackageIndex
) -> None:
    package_index.publish("tinypkg", "1.0")
    env_file = project.path / "tiny.yml"
    env_file.write_text(
        "name: tiny\npython:\n  version: '3.11'\n  pip:\n"
        f"    index_url: {package_index.url}\n    packages: [tinypkg]\n"
    )
    assert kiln_cli(project, cache_dir, "env", "register", "-f", str(env_file)).returncode == 0
    src = project.path / "src"
    write_script(src, "v.py", "import tinypkg; print('tinypkg', tinypkg.__version__)\n")
    submit = ["run", "submit", "--env", "tiny", "-d", str(src), "v.py"]
    assert "tinypkg 1.0" in kiln_cli(project, cache_dir, *submit).stdout
    original = _only_run(project)
    package_index.publish("tinypkg", "2.0")
    refreshed = kiln_cli(project, cache_dir, "env", "build", "tiny", "--refresh")
    assert refreshed.returncode == 0, refreshed.stderr
    assert "tinypkg 2.0" in kiln_cli(project, cache_dir, *submit).stdout  # the newest lock
    again = kiln_cli(project, cache_dir, "run", "reproduce", original)
    assert again.returncode == 0, again.stderr
    assert "tinypkg 1.0" in again.stdout  # the original run's lock, not the newest
    # ...and reproducing did not make the old lock the one everyday runs get.
    assert "tinypkg 2.0" in kiln_cli(project, cache_dir, *submit).stdout


def test_a_run_canceled_while_its_environment_builds_never_starts(
    anywhere: Workspace, package_index: PackageIndex, tmp_path: Path
) -> None:
    project = anywhere
    package_index.publish("slowpkg", "1.0")
    package_index.delay, package_index.delay_suffix = 4.0, ".whl"  # a slow download
    catalog.register(
        project,
        validate_definition(
            {
                "name": "slow",
                "python": {
                    "version": "3.11",
                    "pip": {"index_url": package_index.url, "packages": ["slowpkg"]},
                },
            }
        ),
    )
    write_script(tmp_path / "src", "train.py", "print('the script ran')\n")
    run = Experiment(project, "e").submit(
        ScriptRunConfig(source_directory=tmp_path / "src", script="train.py", environment="slow")
    )
    deadline = time.monotonic() + 60
    while run.get_status() != "Preparing":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    run.cancel()
    assert run.get_status() == "Canceled"
    log = (run_folder(project, run.id) / "output.log").read_text()
    assert "the script ran" not in log
