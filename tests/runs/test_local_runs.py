"""Runs on the local target, through the real CLI and SDK, in real built environments. The
tests that take ``anywhere`` run on a workspace folder and again on a real ``kiln server``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiln.compute.runfolder import local_side, run_folder
from kiln.errors import InvalidRequest, NotFound
from kiln.runs.core import list_runs
from kiln.runs.store import RunStore
from kiln.sdk.runs import Experiment, Run, RunFailed, ScriptRunConfig
from kiln.workspace import Workspace
from kilntesting.cli import KILN
from kilntesting.runs import address, kiln_cli, run_json, write_script

TRAIN = """
    import os, sys
    from kiln import Run
    run = Run.get_context()
    print("args", sys.argv[1:], "offline" if run.offline else "online", flush=True)
    print("to stderr", file=sys.stderr, flush=True)
    run.log("accuracy", 0.5)
    run.log("accuracy", 0.75)
    run.log_metrics({"loss": 0.25, "name": "tiny"})
    os.makedirs("outputs/sub", exist_ok=True)
    open("outputs/model.txt", "w").write("weights")
    open("outputs/sub/notes.txt", "w").write("notes")
    print("cwd files", sorted(os.listdir(".")))
"""


def _runs(ws: Workspace) -> list[str]:
    store = RunStore(ws)
    try:
        return [r.id for r in store.find()]
    finally:
        store.close()


def test_cli_run_records_everything_a_run_needs(
    anywhere: Workspace, cache_dir: Path, tmp_path: Path
) -> None:
    project = anywhere
    src = tmp_path / "src"
    write_script(src, "train.py", TRAIN)
    (src / "data.bin").write_bytes(b"x" * 100)
    (src / ".kilnignore").write_text("data.bin\n")
    result = kiln_cli(
        project,
        cache_dir,
        "run",
        "submit",
        "--env",
        "py",
        "-d",
        str(src),
        "-e",
        "iris",
        "train.py",
        "--",
        "--alpha",
        "0.5",
    )
    assert result.returncode == 0, result.stderr
    assert "args ['--alpha', '0.5'] online" in result.stdout
    assert "to stderr" in result.stdout  # one stream, in order, like a terminal shows it
    assert "data.bin" not in result.stdout  # .kilnignore'd: not in the snapshot
    [run_id] = _runs(project)
    assert run_id.startswith("iris_")
    info = run_json(project, cache_dir, run_id)
    assert info["status"] == "Completed" and info["exit_code"] == 0
    assert info["metrics"] == {"accuracy": [0.5, 0.75], "loss": 0.25, "name": "tiny"}
    assert info["files"] == ["outputs/model.txt", "outputs/sub/notes.txt", "logs/output.log"]
    assert info["arguments"] == ["--alpha", "0.5"]
    assert info["environment"]["name"] == "py" and info["environment"]["version"] == "1"
    assert info["environment"]["newer_versions"] == []
    # Lineage: the lock it used is the environment's lock, and the build is what `env` reports.
    built = json.loads(kiln_cli(project, cache_dir, "env", "build", "py", "--json").stdout)
    assert info["environment"]["lock_digest"] == built["lock_digest"]
    assert info["environment"]["build_hash"] == built["build_hash"]
    assert info["started_at"] and info["ended_at"]
    # Outputs and the log come back out of the workspace.
    out = tmp_path / "downloaded"
    assert kiln_cli(project, cache_dir, "run", "download", run_id, "-d", str(out)).returncode == 0
    assert (out / "outputs" / "model.txt").read_text() == "weights"
    assert (out / "outputs" / "sub" / "notes.txt").read_text() == "notes"
    assert "args ['--alpha', '0.5']" in (out / "logs" / "output.log").read_text()
    logs = kiln_cli(project, cache_dir, "run", "logs", run_id)
    assert "to stderr" in logs.stdout
    as_json = json.loads(kiln_cli(project, cache_dir, "run", "logs", run_id, "--json").stdout)
    assert as_json == {"id": run_id, "status": "Completed", "log": logs.stdout}
    shown = json.loads(kiln_cli(project, cache_dir, "env", "show", "py", "--runs", "--json").stdout)
    assert [r["id"] for r in shown["runs"]] == [run_id]
    # The working copy is gone; the snapshot is in the artifact store (this machine's).
    assert not (run_folder(project, run_id) / "work").exists()
    assert local_side(project).artifacts.has_tree(info["snapshot_digest"])


def test_failing_script_fails_the_run_with_its_exit_code(
    anywhere: Workspace, cache_dir: Path, tmp_path: Path
) -> None:
    project = anywhere
    src = tmp_path / "src"
    write_script(src, "bad.py", "import sys\nprint('about to fail')\nsys.exit(3)\n")
    result = kiln_cli(project, cache_dir, "run", "submit", "--env", "py", "-d", str(src), "bad.py")
    assert result.returncode == 3
    [run_id] = _runs(project)
    info = run_json(project, cache_dir, run_id)
    assert info["status"] == "Failed" and info["exit_code"] == 3
    assert "exited with code 3" in info["error"]


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("missing.py", "`script`: missing.py does not exist"),
        ("../outside.py", "outside the source folder"),
    ],
)
def test_bad_scripts_are_refused_and_record_nothing(
    anywhere: Workspace, cache_dir: Path, tmp_path: Path, script: str, expected: str
) -> None:
    project = anywhere
    src = tmp_path / "src"
    write_script(src, "train.py", "print(1)\n")
    write_script(tmp_path, "outside.py", "print(1)\n")
    result = kiln_cli(project, cache_dir, "run", "submit", "--env", "py", "-d", str(src), script)
    assert result.returncode == 2
    assert expected in result.stderr
    assert _runs(project) == []


def test_unknown_environment_is_refused(
    anywhere: Workspace, cache_dir: Path, tmp_path: Path
) -> None:
    project = anywhere
    write_script(tmp_path / "src", "train.py", "print(1)\n")
    result = kiln_cli(
        project,
        cache_dir,
        "run",
        "submit",
        "--env",
        "nope:7",
        "-d",
        str(tmp_path / "src"),
        "train.py",
    )
    assert result.returncode == 3
    assert "no environment nope:7" in result.stderr
    assert _runs(project) == []


def test_snapshot_over_the_limit_names_the_largest_files(
    project: Workspace, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = project.path / "src"
    write_script(src, "train.py", "print(1)\n")
    (src / "big.csv").write_bytes(b"0" * 600_000)
    (src / "medium.csv").write_bytes(b"0" * 300_000)
    monkeypatch.setenv("KILN_SNAPSHOT_LIMIT_MB", "0.5")
    result = kiln_cli(
        project, cache_dir, "run", "submit", "--env", "py", "-d", str(src), "train.py"
    )
    assert result.returncode == 2
    assert "largest files: big.csv (585.9 KB), medium.csv (293.0 KB)" in result.stderr
    assert ".kilnignore" in result.stderr
    assert _runs(project) == []


def test_a_snapshot_limit_that_is_not_a_positive_number_is_refused(
    project: Workspace, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = project.path / "src"
    write_script(src, "train.py", "print(1)\n")
    for bad in ("-5", "0", "nan", "lots"):
        monkeypatch.setenv("KILN_SNAPSHOT_LIMIT_MB", bad)
        submit = ["run", "submit", "--env", "py", "-d", str(src), "train.py"]
        result = kiln_cli(project, cache_dir, *submit)
        assert result.returncode == 2, (bad, result.stderr)
        assert f"KILN_SNAPSHOT_LIMIT_MB={bad!r} is not a positive number" in result.stderr
    assert _runs(project) == []


def test_every_run_gets_a_fresh_copy_of_the_snapshot(project: Workspace, cache_dir: Path) -> None:
    src = project.path / "src"
    write_script(
        src,
        "mutate.py",
        "text = open('state.txt').read()\nprint('saw', text)\nopen('state.txt', 'w').write('changed')\n",
    )
    (src / "state.txt").write_text("original")
    for _ in range(2):
        result = kiln_cli(
            project, cache_dir, "run", "submit", "--env", "py", "-d", str(src), "mutate.py"
        )
        assert "saw original" in result.stdout
    assert (src / "state.txt").read_text() == "original"


def test_sdk_submit_wait_details_and_files(
    anywhere: Workspace, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    project = anywhere
    src = tmp_path / "src"
    write_script(src, "train.py", TRAIN)
    experiment = Experiment(project, "sdk-exp")
    config = ScriptRunConfig(
        source_directory=src, script="train.py", arguments=[1, "b"], environment="py"
    )
    run = experiment.submit(config)
    details = run.wait_for_completion(show_output=True)
    assert "args ['1', 'b'] online" in capfd.readouterr().out
    assert details["status"] == "Completed" == run.get_status()
    assert run.get_metrics()["loss"] == 0.25
    assert run.get_environment().name == "py"
    assert run.get_file_names()[:2] == ["outputs/model.txt", "outputs/sub/notes.txt"]
    saved = run.download_files(prefix="outputs", output_directory=tmp_path / "dl")
    assert sorted(p.relative_to(tmp_path / "dl").as_posix() for p in saved) == [
        "outputs/model.txt",
        "outputs/sub/notes.txt",
    ]
    with pytest.raises(NotFound, match="no file"):
        run.download_file("outputs/none.txt", tmp_path / "x")
    assert [r.id for r in experiment.get_runs()] == [run.id]
    run.log("from-sdk", 1)
    assert run.get_metrics()["from-sdk"] == 1


def test_wait_for_completion_raises_when_the_run_fails(anywhere: Workspace, tmp_path: Path) -> None:
    project = anywhere
    write_script(tmp_path / "src", "bad.py", "raise SystemExit(5)\n")
    run = Experiment(project, "e").submit(
        ScriptRunConfig(source_directory=tmp_path / "src", script="bad.py", environment="py")
    )
    with pytest.raises(RunFailed, match="exited with code 5"):
        run.wait_for_completion()
    assert run.wait_for_completion(raise_on_error=False)["exit_code"] == 5


def test_a_script_started_by_hand_gets_an_offline_context(tmp_path: Path) -> None:
    script = write_script(tmp_path, "train.py", TRAIN)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KILN_RUN")}
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "offline" in result.stdout


def _child_pid_file(src: Path) -> Path:
    write_script(
        src,
        "sleepy.py",
        """
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        print("child", child.pid, flush=True)
        time.sleep(600)
        """,
    )
    return src


def _wait_for(predicate, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _child_of(ws: Workspace, run: Run) -> int:
    log = run_folder(ws, run.id) / "output.log"
    _wait_for(lambda: log.exists() and "child " in log.read_text())
    return int(log.read_text().split("child ", 1)[1].split()[0])


def _dead(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state == "Z"


def test_cancel_stops_the_whole_process_group(anywhere: Workspace, tmp_path: Path) -> None:
    project = anywhere
    src = _child_pid_file(tmp_path / "src")
    run = Experiment(project, "e").submit(
        ScriptRunConfig(source_directory=src, script="sleepy.py", environment="py")
    )
    child = _child_of(project, run)
    run.cancel()
    assert run.get_status() == "Canceled"
    _wait_for(lambda: _dead(child), timeout=30)
    with pytest.raises(InvalidRequest, match="already ended"):
        run.cancel()


def test_a_dead_watcher_does_not_leave_the_run_running(anywhere: Workspace, tmp_path: Path) -> None:
    project = anywhere
    src = _child_pid_file(tmp_path / "src")
    run = Experiment(project, "e").submit(
        ScriptRunConfig(source_directory=src, script="sleepy.py", environment="py")
    )
    child = _child_of(project, run)
    store = RunStore(project)
    watcher = store.get(run.id).watcher
    store.close()
    assert watcher is not None
    os.kill(int(watcher.split(":")[1]), signal.SIGKILL)
    # Listing runs settles them too: none is shown running when its watcher is gone.
    _wait_for(lambda: list_runs(project, experiment="e")[0].status != "Running", timeout=30)
    assert run.get_status() == "Failed"
    details = run.get_details()
    assert details["status"] == "Failed"
    assert "stopped before the run ended" in details["error"]
    _wait_for(lambda: _dead(child), timeout=30)


def test_ctrl_c_on_a_watched_run_cancels_it(
    anywhere: Workspace, cache_dir: Path, tmp_path: Path
) -> None:
    project = anywhere
    src = _child_pid_file(tmp_path / "src")
    env = {**os.environ, "KILN_WORKSPACE": address(project), "KILN_CACHE_DIR": str(cache_dir)}
    cli = subprocess.Popen(
        [*KILN, "run", "submit", "--env", "py", "-d", str(src), "sleepy.py"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert cli.stdout is not None
    line = cli.stdout.readline()
    while not line.startswith("child "):  # first, maybe, the environment's build
        line = cli.stdout.readline()
    child = int(line.split()[1])
    cli.send_signal(signal.SIGINT)
    _, err = cli.communicate(timeout=60)
    assert cli.returncode == 130, err
    _wait_for(lambda: _dead(child), timeout=30)
    [run_id] = _runs(project)
    assert run_json(project, cache_dir, run_id)["status"] == "Canceled"


# Runs ``python -m kiln ARGS`` and, as the interpreter exits, writes its own peak memory
# (VmHWM: the high-water mark of this image since exec, so not the pytest process it was forked
# from, as rusage's maxrss would be) to the file named by its first argument. Read by the process
# itself, it cannot be missed: sampling /proc/PID/status from outside misses the peak between two
# samples and finds no VmHWM at all once the process is a zombie.
_PEAK_REPORTING_KILN = """
import atexit, pathlib, runpy, sys
report = pathlib.Path(sys.argv.pop(1))
def _report() -> None:
    status = pathlib.Path("/proc/self/status").read_text()
    report.write_text(status.split("VmHWM:")[1].split()[0])
atexit.register(_report)
sys.argv[0] = "kiln"
runpy.run_module("kiln", run_name="__main__", alter_sys=True)
"""


def test_a_flood_of_output_is_kept_whole_in_bounded_memory(
    project: Workspace, cache_dir: Path, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    write_script(
        src,
        "flood.py",
        """
        import sys
        line = b"x" * 1023 + b"\\n"
        for i in range(100 * 1024):  # 100 MiB as fast as Python can write it
            sys.stdout.buffer.write(line)
        """,
    )
    assert kiln_cli(project, cache_dir, "env", "build", "py").returncode == 0
    env = {**os.environ, "KILN_WORKSPACE": str(project.path), "KILN_CACHE_DIR": str(cache_dir)}
    peak = tmp_path / "peak-kib"
    submit = ["run", "submit", "--env", "py", "-d", str(src), "flood.py"]
    watcher = subprocess.run(
        [sys.executable, "-c", _PEAK_REPORTING_KILN, str(peak), *submit],
        env=env,
        stdout=subprocess.DEVNULL,  # the watcher copies all 100 MiB here
        stderr=subprocess.PIPE,
        timeout=600,
        check=False,
    )
    assert watcher.returncode == 0, watcher.stderr[-2000:]
    peak_kib = int(peak.read_text())
    assert 0 < peak_kib < 150 * 1024  # far below the 100 MiB that went through it
    [run_id] = _runs(project)
    log = (project.root / "runs" / run_id / "output.log").read_bytes()
    assert log.count(b"x" * 1023 + b"\n") == 100 * 1024


def test_several_runs_go_at_once(project: Workspace, tmp_path: Path) -> None:
    write_script(
        tmp_path / "src", "wait.py", "import time, sys\ntime.sleep(4)\nprint('done', sys.argv[1])\n"
    )
    experiment = Experiment(project, "parallel")
    runs = [
        experiment.submit(
            ScriptRunConfig(
                source_directory=tmp_path / "src", script="wait.py", arguments=[i], environment="py"
            )
        )
        for i in range(3)
    ]
    for run in runs:
        run.wait_for_completion()
    starts = sorted(r.get_details()["startTimeUtc"] for r in runs)
    ends = sorted(r.get_details()["endTimeUtc"] for r in runs)
    assert starts[-1] < ends[0]  # all three were running at the same moment


def test_run_and_model_commands_print_their_public_schemas(
    project: Workspace, cache_dir: Path
) -> None:
    """``kiln_cli`` checks every ``--json`` output against schema/public/; these are the run
    and model commands no other test asks for JSON."""
    src = project.path / "src"
    write_script(src, "train.py", TRAIN)
    write_script(src, "sleepy.py", "import time\ntime.sleep(600)\n")
    submit = ["run", "submit", "--env", "py", "-d", str(src), "--json"]
    done = kiln_cli(project, cache_dir, *submit, "train.py")
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    assert (run["status"], run["exit_code"]) == ("Completed", 0)
    assert run["id"] and run["created_at"].endswith("+00:00")
    out = project.path / "out"
    saved = kiln_cli(project, cache_dir, "run", "download", run["id"], "-d", str(out), "--json")
    assert str(out / "outputs" / "model.txt") in json.loads(saved.stdout)
    model_args = ["-n", "m", "-p", "outputs/model.txt", "--run", run["id"], "--json"]
    model = json.loads(kiln_cli(project, cache_dir, "model", "register", *model_args).stdout)
    assert (model["id"], model["run_id"], model["environment"]) == ("m:1", run["id"], "py:1")
    shown = json.loads(kiln_cli(project, cache_dir, "model", "show", "m", "--json").stdout)
    assert shown == model
    detached = kiln_cli(project, cache_dir, *submit, "--detach", "sleepy.py")
    state = json.loads(detached.stdout)
    assert set(state) == {"id", "status"}
    canceled = kiln_cli(project, cache_dir, "run", "cancel", state["id"], "--grace", "2", "--json")
    assert json.loads(canceled.stdout) == {"id": state["id"], "status": "Canceled"}
