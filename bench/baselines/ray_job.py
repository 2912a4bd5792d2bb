"""Baseline for the runs benchmark (issue 4): a trivial script as a Ray job with
``runtime_env={"pip": [...]}``, what users do without Kiln.

Timed from ``submit_job`` until the job has ended (status polled every 0.1 s), on a throwaway
local cluster (``kiln.compute.ray_local``: a head plus one worker node on 127.0.0.1):

- **cold** (``fresh=True``): Ray keeps one virtualenv per node per URI, and the pip URI is a
  digest of the ``pip`` field only (``env_vars`` are a separate field and change nothing), so a
  unique comment line (``# fresh <uuid>``) is added to the package list: pip ignores it, Ray
  builds a new virtualenv (a clone of the Python Ray runs on, then ``pip install
  --no-cache-dir``: Ray's default options, so the packages are downloaded again too);
- **warm** (``fresh=False``): the same package list as an earlier job, so Ray reuses that
  virtualenv and only uploads the working dir (cached by content too) and starts the script.

``installer="uv"`` times Ray's ``uv`` field instead (what Kiln's Ray target uses, there with an
exact hashed lock and ``--no-deps``). pip's machine-wide configuration is switched off so pip uses
the registry uv uses, as ``bench/build.py`` does.

Run: ``python bench/baselines/ray_job.py [--packages six==1.17.0 ...] [--repeat N]``. Progress
goes to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


def ray_job_seconds(
    address: str, script: Path, packages: list[str], *, fresh: bool, installer: str = "pip"
) -> float:
    """Seconds from submitting ``python SCRIPT`` (its folder as the working dir) until it ended."""
    from ray.job_submission import JobSubmissionClient

    from kiln.compute.ray_jobs import dashboard_url

    client = JobSubmissionClient(dashboard_url(address))
    listed = [*packages, f"# fresh {uuid.uuid4().hex}"] if fresh else list(packages)
    runtime_env: dict[str, Any] = {"working_dir": str(script.parent), installer: listed}
    began = time.perf_counter()
    job = client.submit_job(entrypoint=f"python {script.name}", runtime_env=runtime_env)
    while (status := client.get_job_status(job).value) not in TERMINAL:
        time.sleep(0.1)
    seconds = time.perf_counter() - began
    if status != "SUCCEEDED":
        raise RuntimeError(f"job {job} ended {status}:\n{client.get_job_logs(job)}")
    return seconds


def _row(label: str, samples: list[float]) -> str:
    median = statistics.median(samples)
    return f"| {label} | {median:.2f} | {min(samples):.2f} | {max(samples):.2f} | {len(samples)} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packages", nargs="+", default=["six==1.17.0"])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ["PIP_CONFIG_FILE"] = os.devnull  # the cluster's pip uses the registry uv uses
    os.environ.pop("PIP_FIND_LINKS", None)
    from kiln.compute.ray_local import local_cluster

    rows = []
    with tempfile.TemporaryDirectory(prefix="kiln-ray-bench-") as work, local_cluster() as cluster:
        print(f"cluster up in {cluster.startup_seconds:.1f} s", file=sys.stderr)
        script = Path(work) / "script.py"
        script.write_text("import six\nprint('hello from', six.__name__)\n")
        for installer in ("pip", "uv"):
            cold = [ray_job_seconds(cluster.address, script, args.packages, fresh=True, installer=installer) for _ in range(args.repeat)]  # fmt: skip
            ray_job_seconds(cluster.address, script, args.packages, fresh=False, installer=installer)  # fmt: skip
            warm = [ray_job_seconds(cluster.address, script, args.packages, fresh=False, installer=installer) for _ in range(args.repeat)]  # fmt: skip
            print(f"{installer}: cold {cold}, warm {warm}", file=sys.stderr)
            rows += [_row(f"Ray job, {installer} runtime_env, cold", cold)]
            rows += [_row(f"Ray job, {installer} runtime_env, warm", warm)]
    print(f"Ray job baseline, packages {' '.join(args.packages)} (seconds, submit to end)\n")
    print("| case | median | min | max | runs |\n| --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
