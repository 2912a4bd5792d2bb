"""A run's own image, for clusters that take the code only inside an image (Ray's ``image_uri``
accepts nothing beside ``env_vars``: no working_dir, no py_modules): the environment's image by
digest, plus the run's snapshot at ``/kiln/run/work`` and Kiln's runtime package at
``/kiln/python``, pushed to the workspace's registry as ``kiln/run:RUN_ID``. It adds one small
layer to layers the registry already holds, and the environment's image stays as it is.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from kiln.compute.runfolder import kiln_package
from kiln.podman import KILN_PATH, read_image_facts

if TYPE_CHECKING:
    from kiln.compute.base import Job

RUN_WORK = "/kiln/run/work"
REPOSITORY = "kiln/run"


def environment_digest(job: Job) -> str:
    """The environment image's digest: the pinned one (a reproduce) or the one readied."""
    return job.image_digest or str(read_image_facts(job.ready.path)["digest"])


def build_and_push(job: Job) -> str:
    """The run's image in the workspace's registry, by digest (what every node pulls)."""
    from kiln.builders.oci import engine
    from kiln.builders.oci.publish import LOCAL_REPOSITORY, push
    from kiln.builders.oci.registry import parse

    assert job.workspace.image_registry is not None  # the target's prepare() says so otherwise
    registry = parse(job.workspace.image_registry)
    local = f"localhost/{REPOSITORY}:{job.run_id}"
    with tempfile.TemporaryDirectory(prefix="kiln-run-image-") as folder:
        context = Path(folder)
        shutil.copytree(job.work, context / "work", symlinks=True)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(kiln_package(), context / "kiln", ignore=ignore)
        (context / "Containerfile").write_text(
            f"FROM {LOCAL_REPOSITORY}@{environment_digest(job)}\n"
            f"COPY work {RUN_WORK}\nCOPY kiln {KILN_PATH}/kiln\n"
            f"ENV PYTHONPATH={KILN_PATH}\nWORKDIR {RUN_WORK}\n",
            encoding="utf-8",
        )
        engine.run(
            "podman",
            ["build", "-q", "--pull=never", "-t", local, str(context)],
            what="building the run's image",
        )
    try:
        digest = push(
            f"containers-storage:{local}", registry, registry.reference(job.run_id, REPOSITORY)
        )
    finally:
        engine.run("podman", ["rmi", "--force", local], what="removing the local run image")
    return registry.by_digest(digest, REPOSITORY)
