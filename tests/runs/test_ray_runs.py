"""Runs on a real local Ray cluster (a head and one more node, on 127.0.0.1): the exact lock on
the workers, logs, metrics, outputs and status back in the run, cancel, bad addresses."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from kiln import catalog
from kiln.compute.ray_local import LocalCluster
from kiln.environment.validation import validate_definition
from kiln.runs import processes
from kiln.runs.store import RunStore
from kiln.sdk.runs import Experiment, ScriptRunConfig
from kiln.workspace import Workspace
from kilntesting.builds import PackageIndex
from kilntesting.runs import kiln_cli, wait_for_output, write_script

TRAIN = """
    import os, sys
    import tinypkg
    from kiln import Run
    print("tinypkg", tinypkg.__version__, "argv", sys.argv[1:], "GREETING", os.environ.get("GREETING"))
    Run.get_context().log("score", 7)
    os.makedirs("outputs", exist_ok=True)
    open("outputs/result.txt", "w").write("from ray")
"""


def test_a_run_on_ray_uses_the_exact_lock_and_reports_back(
    project: Workspace,
    tmp_path: Path,
    package_index: PackageIndex,
    ray_cluster: LocalCluster,
) -> None:
    package_index.publish("tinypkg", "1.0")
    definition = {
        "name": "tiny",
        "python": {
            "version": "3.11",
            "pip": {"index_url": package_index.url, "packages": ["tinypkg"]},
        },
        "environment_variables": {"GREETING": "hi"},
    }
    catalog.register(project, validate_definition(definition))
    write_script(tmp_path / "src", "train.py", TRAIN)
    experiment = Experiment(project, "ray")
    config = ScriptRunConfig(
        tmp_path / "src", "train.py", ["--n", 3], "tiny", compute_target=ray_cluster.address
    )
    first = experiment.submit(config)
    details = first.wait_for_completion()
    package_index.publish("tinypkg", "2.0")  # newer on the index: the lock still says 1.0
    second = experiment.submit(config)
    second.wait_for_completion()
    for run in (first, second):
        log = (project.root / "runs" / run.id / "output.log").read_text()
        assert "tinypkg 1.0 argv ['--n', '3'] GREETING hi" in log
    assert details["status"] == "Completed" and details["target"] == ray_cluster.address
    assert details["metrics"] == {"score": 7}
    assert details["files"] == ["outputs/result.txt", "logs/output.log"]
    assert details["target_job_id"] == first.id
    local = Experiment(project, "local").submit(
        ScriptRunConfig(tmp_path / "src", "train.py", [], "tiny")
    )
    local_details = local.wait_for_completion()
    assert local_details["environment"]["lock_digest"] == details["environment"]["lock_digest"]


def test_failures_and_cancel_on_ray(
    project: Workspace, tmp_path: Path, cache_dir: Path, ray_cluster: LocalCluster
) -> None:
    write_script(tmp_path / "src", "fail.py", "import sys\nprint('bye')\nsys.exit(4)\n")
    write_script(
        tmp_path / "src",
        "sleep.py",
        "import time\nprint('sleeping', flush=True)\ntime.sleep(600)\n",
    )
    result = kiln_cli(
        project,
        cache_dir,
        "run",
        "submit",
        "--env",
        "py",
        "--target",
        ray_cluster.address,
        "-d",
        str(tmp_path / "src"),
        "--json",
        "fail.py",
    )
    assert result.returncode == 4
    info = json.loads(result.stdout)
    assert info["status"] == "Failed" and info["exit_code"] == 4
    run = Experiment(project, "ray").submit(
        ScriptRunConfig(tmp_path / "src", "sleep.py", [], "py", compute_target=ray_cluster.address)
    )
    wait_for_output(project, run.id, "sleeping")
    run.cancel()
    assert run.get_status() == "Canceled"


def test_an_unreachable_cluster_fails_fast_and_records_nothing_running(
    project: Workspace, tmp_path: Path, cache_dir: Path
) -> None:
    write_script(tmp_path / "src", "t.py", "print(1)\n")
    started = time.monotonic()
    result = kiln_cli(
        project,
        cache_dir,
        "run",
        "submit",
        "--env",
        "py",
        "--target",
        "ray://127.0.0.1:9",
        "-d",
        str(tmp_path / "src"),
        "--json",
        "t.py",
    )
    assert time.monotonic() - started < 60  # bounded, not a timing benchmark
    assert result.returncode == 1
    info = json.loads(result.stdout)
    assert info["status"] == "Failed" and "127.0.0.1:9" in info["error"]
    bad = kiln_cli(
        project,
        cache_dir,
        "run",
        "submit",
        "--env",
        "py",
        "--target",
        "ray://no port:x",
        "-d",
        str(tmp_path / "src"),
        "t.py",
    )
    assert bad.returncode == 2


def test_a_ray_run_whose_watcher_died_is_settled_from_the_cluster(
    project: Workspace, tmp_path: Path, ray_cluster: LocalCluster
) -> None:
    go = tmp_path / "go"  # the job ends only once the test has seen it outlive its watcher
    write_script(
        tmp_path / "src",
        "wait.py",
        """
        import os, sys, time
        print("started", flush=True)
        while not os.path.exists(sys.argv[1]):
            time.sleep(0.1)
        print("finished on ray")
        """,
    )
    run = Experiment(project, "ray").submit(
        ScriptRunConfig(
            tmp_path / "src", "wait.py", [str(go)], "py", compute_target=ray_cluster.address
        )
    )
    log = project.root / "runs" / run.id / "output.log"
    deadline = time.monotonic() + 120
    while not (log.exists() and "started" in log.read_text()):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    store = RunStore(project)
    watcher = store.get(run.id).watcher
    store.close()
    assert watcher is not None
    os.kill(int(watcher.split(":")[1]), signal.SIGKILL)
    while processes.watcher_alive(watcher):
        time.sleep(0.05)
    # Read now, the run is still going on the cluster; reading it must not make this (living)
    # process pass for its watcher, or nobody would ever record its end.
    assert run.get_status() == "Running"
    go.touch()
    while run.get_status() == "Running":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    details = run.get_details()
    assert details["status"] == "Completed" and details["exit_code"] == 0, details["error"]
    assert "finished on ray" in run.download_file("logs/output.log", tmp_path).read_text()
