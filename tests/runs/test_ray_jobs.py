"""The Ray target against a real local cluster (a head plus one worker node on 127.0.0.1, from
the ``ray_cluster`` fixture) and a real package index: nothing is mocked."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest

from kiln.compute import ray_jobs
from kiln.compute.ray_jobs import RayAddressError, RayTargetError, dashboard_url
from kiln.compute.ray_local import LocalCluster
from kiln.errors import Conflict, InvalidRequest, NotFound
from kilntesting.builds import PackageIndex, make_wheel

TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}
PROBE = """\
import os, pathlib, sys
import kilnprobe, kilnlocal, kilnrt
print("value", os.environ["KILN_TEST_VALUE"], "argument", sys.argv[1])
print("probe", kilnprobe.__version__, "local", kilnlocal.__version__, "runtime", kilnrt.NAME)
print("python", sys.executable)
pathlib.Path(os.environ["KILN_TEST_OUT"]).write_text(sys.argv[1] + " " + os.getcwd())
"""


def new_id() -> str:
    return f"kiln-test-{uuid.uuid4().hex[:12]}"


def wait_until_done(address: str, submission_id: str, limit: float = 240.0) -> str:
    """The job's final status; a job still going after ``limit`` seconds fails the test."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        status = ray_jobs.job_status(address, submission_id)
        if status in TERMINAL:
            return status
        time.sleep(0.5)
    ray_jobs.stop_job(address, submission_id)
    raise AssertionError(f"job {submission_id} still {status} after {limit} s")


def folder_with(tmp_path: Path, name: str, script: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "script.py").write_text(script)
    return folder


def submit(cluster: LocalCluster, folder: Path, entrypoint: str, **kwargs: object) -> str:
    options: dict[str, object] = {"py_modules": [], "env_vars": {}, "requirements": []}
    options.update(kwargs)
    return ray_jobs.submit_job(
        cluster.address,
        submission_id=new_id(),
        entrypoint=entrypoint,
        working_dir=folder,
        **options,  # type: ignore[arg-type]
    )


def hashed(wheel: Path) -> str:
    return f"--hash=sha256:{hashlib.sha256(wheel.read_bytes()).hexdigest()}"


# ---------------------------------------------------------------- addresses (no cluster)


@pytest.mark.parametrize(
    ("address", "url"),
    [
        ("ray://10.0.0.5:8265", "http://10.0.0.5:8265"),
        ("ray://head.example", "http://head.example:8265"),
        ("127.0.0.1:9000", "http://127.0.0.1:9000"),
        ("head", "http://head:8265"),
        ("http://head:8266/", "http://head:8266"),
        ("https://ray.example.org", "https://ray.example.org:8265"),
        (" ray://[::1]:8265 ", "http://[::1]:8265"),
    ],
)
def test_dashboard_url_accepts_the_usual_forms(address: str, url: str) -> None:
    assert dashboard_url(address) == url


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("grpc://head:8265", "unknown scheme 'grpc'"),
        ("ray://head:port", "the port is not a number"),
        ("ray://", "expected HOST or HOST:PORT"),
        ("ray://head:8265/jobs", "expected HOST or HOST:PORT"),
    ],
)
def test_dashboard_url_names_the_fix_for_bad_addresses(address: str, why: str) -> None:
    with pytest.raises(RayAddressError) as caught:
        dashboard_url(address)
    assert str(caught.value) == (
        f"compute target {address!r} is not a Ray address ({why}): use ray://HOST:PORT with the "
        "dashboard port of the cluster's head node (8265 by default)"
    )
    assert caught.value.exit_code == 2


def test_an_unreachable_cluster_fails_with_the_fix() -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(RayTargetError) as caught:
        ray_jobs.check_reachable(f"ray://127.0.0.1:{port}", timeout=5)
    message = str(caught.value)
    assert message.startswith(
        f"no Ray cluster answers at http://127.0.0.1:{port}: start one with `ray start --head"
    ), message
    assert "or check the address" in message and "refused" in message


def test_a_cluster_that_never_answers_gives_up_after_the_timeout() -> None:
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        with pytest.raises(
            RayTargetError, match=f"no Ray cluster answers at http://127.0.0.1:{port}"
        ):
            ray_jobs.check_reachable(f"127.0.0.1:{port}", timeout=1)


def test_requirement_lines_are_normalized_and_relative_paths_refused() -> None:
    spec = ray_jobs.install_spec(
        ["# a lock", "--index-url http://127.0.0.1:1/simple", "a==1.0 \\\n    --hash=sha256:ab"]
    )
    assert spec == {
        "packages": ["--index-url http://127.0.0.1:1/simple", "a==1.0 --hash=sha256:ab"],
        "uv_pip_install_options": ["--no-deps", "--require-hashes"],
    }
    assert ray_jobs.install_spec(["b @ https://example.org/b.whl"]) == {
        "packages": ["b @ https://example.org/b.whl"],
        "uv_pip_install_options": ["--no-deps"],
    }
    assert ray_jobs.install_spec(["--index-url http://x/simple"]) is None
    with pytest.raises(InvalidRequest, match="names a relative path"):
        ray_jobs.install_spec(["./wheels/c-1.0-py3-none-any.whl --hash=sha256:cd"])
    with pytest.raises(InvalidRequest, match="option '-r' cannot go to a Ray cluster"):
        ray_jobs.install_spec(["-r other.txt"])


# ---------------------------------------------------------------- jobs on the real cluster


def test_a_job_runs_with_the_exact_lock_env_vars_arguments_and_modules(
    ray_cluster: LocalCluster, package_index: PackageIndex, tmp_path: Path
) -> None:
    pinned = package_index.publish("kilnprobe", "1.0")
    package_index.publish("kilnprobe", "2.0")  # newer, and not what the lock says
    local = make_wheel(tmp_path / "local", "kilnlocal", "0.3")  # a local wheel, absolute path
    runtime = tmp_path / "modules" / "kilnrt"
    runtime.mkdir(parents=True)
    (runtime / "__init__.py").write_text('NAME = "kiln-runtime"\n')
    out = tmp_path / "out.txt"
    folder = folder_with(tmp_path, "source", PROBE)
    requirements = [
        f"--index-url {package_index.url}",
        f"kilnprobe==1.0 {hashed(pinned)}",
        f"{local} {hashed(local)}",
    ]

    job = submit(
        ray_cluster,
        folder,
        "python script.py first-argument",
        py_modules=[runtime],
        env_vars={"KILN_TEST_VALUE": "from-kiln", "KILN_TEST_OUT": str(out)},
        requirements=requirements,
    )
    followed = "".join(ray_jobs.follow_logs(ray_cluster.address, job))

    details = ray_jobs.job_details(ray_cluster.address, job)
    logs = ray_jobs.job_logs(ray_cluster.address, job)
    assert details["status"] == "SUCCEEDED", logs
    assert details["exit_code"] == 0
    assert details["start_time"] <= details["end_time"]
    assert "value from-kiln argument first-argument" in logs
    assert "probe 1.0 local 0.3 runtime kiln-runtime" in logs
    assert "probe 1.0 local 0.3 runtime kiln-runtime" in followed
    # The entrypoint's `python` is the runtime_env's virtualenv, not the cluster's own.
    python = next(line for line in logs.splitlines() if line.startswith("python "))
    assert "/runtime_resources/uv/" in python, python
    text = out.read_text().split(" ")
    assert text[0] == "first-argument"
    assert text[1] != str(folder)  # ran in the uploaded copy of the folder


def test_a_failing_script_ends_failed_with_its_exit_code(
    ray_cluster: LocalCluster, tmp_path: Path
) -> None:
    folder = folder_with(tmp_path, "failing", "import sys\nprint('about to fail')\nsys.exit(7)\n")
    job = submit(ray_cluster, folder, "python script.py")
    assert wait_until_done(ray_cluster.address, job) == "FAILED"
    details = ray_jobs.job_details(ray_cluster.address, job)
    assert details["exit_code"] == 7, details
    assert "failed with exit code 7" in details["message"]
    assert "about to fail" in ray_jobs.job_logs(ray_cluster.address, job)


def test_stop_job_stops_a_script_that_never_ends(ray_cluster: LocalCluster, tmp_path: Path) -> None:
    script = "import time\nprint('sleeping', flush=True)\ntime.sleep(3600)\n"
    job = submit(ray_cluster, folder_with(tmp_path, "sleeper", script), "python script.py")
    for chunk in ray_jobs.follow_logs(ray_cluster.address, job):
        if "sleeping" in chunk:  # it really runs; now stop it
            break
    ray_jobs.stop_job(ray_cluster.address, job)
    assert wait_until_done(ray_cluster.address, job, limit=60) == "STOPPED"
    assert ray_jobs.job_details(ray_cluster.address, job)["exit_code"] is None


def test_two_jobs_run_in_parallel_and_logs_follow_from_threads(
    ray_cluster: LocalCluster, tmp_path: Path
) -> None:
    # Each job waits until the other one has started: they pass only if both run at once.
    script = (
        "import os, pathlib, sys, time\n"
        "me, other = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])\n"
        "me.touch()\n"
        "deadline = time.time() + 120\n"
        "while not other.exists() and time.time() < deadline: time.sleep(0.1)\n"
        "print('met', other.exists(), os.environ['WHO'])\n"
    )
    folder = folder_with(tmp_path, "pair", script)
    a, b = tmp_path / "a", tmp_path / "b"
    jobs = [
        submit(ray_cluster, folder, f"python script.py {a} {b}", env_vars={"WHO": "first"}),
        submit(ray_cluster, folder, f"python script.py {b} {a}", env_vars={"WHO": "second"}),
    ]
    followed: dict[str, str] = {}

    def follow(job: str) -> None:
        followed[job] = "".join(ray_jobs.follow_logs(ray_cluster.address, job))

    threads = [threading.Thread(target=follow, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert [wait_until_done(ray_cluster.address, job) for job in jobs] == ["SUCCEEDED"] * 2
    assert "met True first" in followed[jobs[0]]
    assert "met True second" in followed[jobs[1]]


def test_unknown_and_duplicate_jobs(ray_cluster: LocalCluster, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="Ray job 'kiln-no-such-job' not found"):
        ray_jobs.job_status(ray_cluster.address, "kiln-no-such-job")
    folder = folder_with(tmp_path, "quick", "print('hi')\n")
    job = submit(ray_cluster, folder, "python script.py")
    with pytest.raises(Conflict, match=f"submission id '{job}' already exists"):
        ray_jobs.submit_job(
            ray_cluster.address,
            submission_id=job,
            entrypoint="python script.py",
            working_dir=folder,
            py_modules=[],
            env_vars={},
            requirements=[],
        )
    assert wait_until_done(ray_cluster.address, job) == "SUCCEEDED"


def test_a_lock_for_another_python_fails_while_ray_sets_the_environment_up(
    ray_cluster: LocalCluster, tmp_path: Path
) -> None:
    built = make_wheel(tmp_path / "wheels", "kilnother", "1.0")
    wheel = built.with_name("kilnother-1.0-cp39-cp39-manylinux_2_17_x86_64.whl")  # CPython 3.9
    built.rename(wheel)
    folder = folder_with(tmp_path, "other", "print('never runs')\n")
    job = submit(ray_cluster, folder, "python script.py", requirements=[f"{wheel} {hashed(wheel)}"])
    assert wait_until_done(ray_cluster.address, job) == "FAILED"
    details = ray_jobs.job_details(ray_cluster.address, job)
    assert details["error_type"] == "RUNTIME_ENV_SETUP_FAILURE", details
    assert details["exit_code"] is None
    assert "kilnother" in details["message"] and "unsatisfiable" in details["message"]
    assert "never runs" not in ray_jobs.job_logs(ray_cluster.address, job)
