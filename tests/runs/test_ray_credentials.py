"""A Ray dashboard behind a reverse proxy that wants a password (a real proxy on 127.0.0.1 in
front of the test cluster): the target is ``ray://${RAY_USER}:${RAY_PASSWORD}@HOST:PORT``, the
credentials reach every call as Basic auth, and a wrong or missing one is one clear line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from kiln.compute import ray_jobs
from kiln.compute.ray_jobs import RayAddressError, RayTargetError
from kiln.compute.ray_local import LocalCluster
from kiln.compute.registry import checked_address
from kiln.errors import InvalidRequest
from kiln.sdk.runs import Experiment, ScriptRunConfig
from kiln.workspace import Workspace
from kilntesting.authproxy import AuthProxy, basic_auth_proxy
from kilntesting.builds import every_byte_under, one_line_without
from kilntesting.runs import kiln_cli, wait_for_output, write_script

USER = "ray-operator"
PASSWORD = "Sw0rdfish-ray-41c9"
WRONG = "not-the-password-2"


@pytest.fixture
def proxy(ray_cluster: LocalCluster) -> Iterator[AuthProxy]:
    upstream = urlsplit(ray_cluster.dashboard_url).port
    assert upstream is not None
    with basic_auth_proxy(upstream, USER, PASSWORD) as started:
        yield started


def _address(proxy: AuthProxy) -> str:
    return f"ray://${{RAY_USER}}:${{RAY_PASSWORD}}@127.0.0.1:{proxy.port}"


def _one_line(error: BaseException) -> str:
    return one_line_without(error, PASSWORD, WRONG)


def test_credentials_go_over_https_unless_the_dashboard_is_on_this_machine() -> None:
    with pytest.raises(InvalidRequest) as refused:
        checked_address("ray://bob:${RAY_PASSWORD}@head.example:8265")
    assert _one_line(refused.value) == (
        "compute target ray://bob:${RAY_PASSWORD}@head.example:8265 would send its credentials "
        "unencrypted (the dashboard at http://head.example:8265 is plain http); put the "
        "dashboard behind https and write https://bob:${RAY_PASSWORD}@head.example:8265"
    )
    for accepted in (
        "https://bob:${RAY_PASSWORD}@head.example:8265",
        "ray://bob:${RAY_PASSWORD}@127.0.0.1:8265",
        "ray://head.example:8265",
    ):
        checked_address(accepted)


def test_a_missing_or_wrong_password_is_one_line_naming_the_variables(
    proxy: AuthProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    address, url = _address(proxy), f"http://127.0.0.1:{proxy.port}"
    monkeypatch.setenv("RAY_USER", USER)
    monkeypatch.delenv("RAY_PASSWORD", raising=False)
    with pytest.raises(RayAddressError) as unset:
        ray_jobs.job_status(address, "kiln-test-none")
    assert _one_line(unset.value) == (
        f"compute target {address} uses ${{RAY_PASSWORD}}, which is not set; export RAY_PASSWORD"
    )
    assert proxy.accepted == proxy.refused == []  # nothing was asked

    monkeypatch.setenv("RAY_PASSWORD", WRONG)
    with pytest.raises(RayTargetError) as wrong:
        ray_jobs.job_status(address, "kiln-test-none")
    assert _one_line(wrong.value) == (
        f"the Ray dashboard at {url} refused the credentials read from RAY_USER, RAY_PASSWORD "
        "(401 Unauthorized); check their values"
    )

    with pytest.raises(RayTargetError) as bare:
        ray_jobs.job_status(f"ray://127.0.0.1:{proxy.port}", "kiln-test-none")
    assert _one_line(bare.value) == (
        f"the Ray dashboard at {url} needs credentials (401 Unauthorized); add the target as "
        f"ray://USER:${{RAY_PASSWORD}}@127.0.0.1:{proxy.port} and export RAY_PASSWORD"
    )
    assert proxy.accepted == []


def test_a_run_is_submitted_followed_and_cancelled_through_the_proxy(
    project: Workspace,
    tmp_path: Path,
    cache_dir: Path,
    proxy: AuthProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RAY_USER", USER)
    monkeypatch.setenv("RAY_PASSWORD", PASSWORD)
    address = _address(proxy)
    write_script(tmp_path / "src", "hello.py", "print('hello through the proxy')\n")
    write_script(
        tmp_path / "src",
        "sleep.py",
        "import time\nprint('sleeping', flush=True)\ntime.sleep(600)\n",
    )
    experiment = Experiment(project, "ray-auth")
    done = experiment.submit(ScriptRunConfig(tmp_path / "src", "hello.py", [], "py", compute_target=address))  # fmt: skip
    details = done.wait_for_completion()
    assert details["status"] == "Completed" and details["target"] == address
    log = project.root / "runs" / done.id / "output.log"
    assert "hello through the proxy" in log.read_text()

    sleeping = experiment.submit(ScriptRunConfig(tmp_path / "src", "sleep.py", [], "py", compute_target=address))  # fmt: skip
    wait_for_output(project, sleeping.id, "sleeping")
    sleeping.cancel()
    assert sleeping.get_status() == "Canceled"

    # Every kind of call went through the proxy with the password: the snapshot's upload,
    # the submission, the log websocket, the stop.
    accepted = " ".join(proxy.accepted)
    for call in ("PUT /api/packages/", "POST /api/jobs/", "/logs/tail", "/stop"):
        assert call in accepted, call
    assert proxy.refused == []

    shown = [
        kiln_cli(project, cache_dir, "run", "show", done.id, "--json"),
        kiln_cli(project, cache_dir, "run", "list", "--json"),
        kiln_cli(project, cache_dir, "target", "list", "--json"),
    ]
    assert all(r.returncode == 0 for r in shown)
    assert not any(PASSWORD in r.stdout + r.stderr for r in shown)
    assert PASSWORD.encode() not in every_byte_under(project.path)
