"""Ray runs in the environment's image (``ray://HOST:PORT?image=true``): Kiln readies the image,
pushes it to the workspace's registry and submits the job with Ray's ``image_uri`` set to that
image by digest, and no packages to install (the image holds them). The job specification is
checked as the real local cluster recorded it. Running it needs nodes whose podman can pull from
the registry and an image that holds Ray itself (Ray starts its worker inside the container);
the test image holds no Ray, so the job ends failed on the cluster, and the run says why."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from kiln.compute import ray_jobs
from kiln.compute.ray_jobs import RayAddressError, dashboard_url, runs_in_image
from kiln.compute.ray_local import LocalCluster
from kiln.workspace import Workspace
from kilntesting.images import BaseImage, ImageRegistry
from kilntesting.runs import kiln_cli, write_script


@pytest.mark.parametrize(
    ("address", "in_image"),
    [
        ("ray://head:8265", False),
        ("ray://head:8265?image=true", True),
        ("ray://head:8265?image=1", True),
        ("ray://head:8265?image=false", False),
    ],
)
def test_the_image_option_belongs_to_the_target_not_the_dashboard(
    address: str, in_image: bool
) -> None:
    assert runs_in_image(address) is in_image
    assert dashboard_url(address) == "http://head:8265"


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("ray://head:8265?gpus=all", "unknown option 'gpus' (the options: image)"),
        ("ray://head:8265?image=maybe", "image= takes true or false"),
    ],
)
def test_bad_options_name_the_fix(address: str, why: str) -> None:
    with pytest.raises(RayAddressError) as caught:
        dashboard_url(address)
    assert why in str(caught.value) and caught.value.exit_code == 2


def test_an_image_run_without_an_image_registry_is_refused_in_one_line(
    project: Workspace,
    tmp_path: Path,
    cache_dir: Path,
    ray_cluster: LocalCluster,
    base_image: BaseImage,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KILN_BASE_IMAGE", base_image.local_ref)
    write_script(tmp_path / "src", "train.py", "print('never')")
    submitted = kiln_cli(
        project, cache_dir, "run", "submit", "-d", str(tmp_path / "src"),
        "--env", "py", "--target", f"{ray_cluster.address}?image=true", "train.py",
    )  # fmt: skip
    assert submitted.returncode != 0  # the run is recorded as failed, with the reason
    said = submitted.stdout + submitted.stderr
    assert "has the cluster's nodes pull it from the workspace's image registry" in said
    assert "kiln init --image-registry URL" in said


def test_an_image_run_submits_the_image_by_digest_and_no_packages(
    image_project: Workspace,
    tmp_path: Path,
    cache_dir: Path,
    ray_cluster: LocalCluster,
    image_registry: ImageRegistry,
) -> None:
    write_script(tmp_path / "src", "train.py", "print('in the image')")
    address = f"{ray_cluster.address}?image=true"
    submitted = kiln_cli(
        image_project, cache_dir, "run", "submit", "-d", str(tmp_path / "src"),
        "--env", "py", "--target", address, "--json", "train.py", timeout=900,
    )  # fmt: skip
    run = json.loads(submitted.stdout)
    shown = json.loads(
        kiln_cli(image_project, cache_dir, "run", "show", run["id"], "--json").stdout
    )
    assert shown["image"] is not None, (shown, submitted.stdout, submitted.stderr)
    digest = shown["image"]["digest"]  # the environment's image: what reproduce runs again
    assert digest and digest.startswith("sha256:")
    spec = ray_jobs.job_details(ray_cluster.address, run["id"])["runtime_env"]
    assert set(spec) == {"image_uri", "env_vars"}  # all Ray allows beside an image
    host = image_registry.url.split("://")[-1]
    assert spec["image_uri"].startswith(f"{host}/kiln/run@sha256:")
    assert "KILN_OUTPUTS_DIR" in spec["env_vars"]
    # The run's image is the environment's plus the snapshot and Kiln's package.
    shown_script = subprocess.run(
        ["podman", "run", "--rm", "--tls-verify=false", spec["image_uri"], "cat", "train.py"],
        capture_output=True, text=True, check=True, timeout=300,
    ).stdout  # fmt: skip
    assert shown_script.strip() == "print('in the image')"
    log = kiln_cli(image_project, cache_dir, "run", "logs", run["id"]).stdout
    assert f"in image {spec['image_uri']}" in log
    # This cluster's nodes cannot start it (the image holds no Ray): failed, and the run says so.
    assert shown["status"] == "Failed" and "runtime_env setup failed" in shown["error"]
