"""Benchmark: what a run costs on top of ``python train.py``, against MLflow projects and Ray jobs.

One trivial script (``import six; print(...)``), one package set (``six==1.16.0``), same machine:

- bare ``python train.py`` with the environment's interpreter;
- ``kiln run submit --env bench train.py`` in a warm environment (the goal: under 300 ms more
  than bare), and cold (the materialization removed, uv's cache kept: what MLflow's "cold"
  rows keep too);
- ``mlflow run`` with an equivalent ``python_env.yaml`` (env managers uv and virtualenv), cold
  and warm (bench/baselines/mlflow_run.py; needs ``--mlflow PATH`` or installs mlflow-skinny);
- with podman and a base image with Python (``KILN_BASE_IMAGE``, else the Debian base that
  scripts/containers.sh makes for the tests): ``kiln run submit --target container`` with the
  environment's image already built, against a bare ``podman run --rm`` of that image running the
  same script from a bind-mounted folder (the goal: within 150 ms of it) and a warm local run,
  the three interleaved round by round; the difference and ratio are the medians of the
  paired rounds, which load on a shared machine moves less than the medians themselves;
- a Ray job with ``runtime_env={"pip": [...]}`` cold and warm, and the same script through
  ``kiln run submit --target ray://...`` (first use of the lock on the cluster, then warm), on
  a throwaway local cluster (bench/baselines/ray_job.py).

Run: ``python bench/runs.py [--repeat N] [--mlflow PATH | --no-mlflow] [--no-ray]
[--no-containers]``. The table
goes to stdout, progress to stderr. Bytecode caches stay on for every timed process.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baselines import mlflow_run, ray_job

PACKAGES = mlflow_run.DEFAULT_PACKAGES
SCRIPT_TEXT = mlflow_run.DEFAULT_SCRIPT_TEXT
KILN = [sys.executable, "-m", "kiln"]
TEST_BASE = "localhost/kiln-test/debian-python:bookworm-v1"
BARE_PODMAN = "bare `podman run --rm IMAGE python train.py`"
CONTAINER = "`kiln run submit --target container` (image present, warm)"


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def timed(command: list[str], env: dict[str, str], cwd: Path) -> float:
    began = time.perf_counter()
    result = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return seconds


def samples(repeat: int, measure: Callable[[], float]) -> list[float]:
    measure()  # untimed: bytecode, page cache
    return [measure() for _ in range(repeat)]


class Bench:
    def __init__(self, root: Path, repeat: int) -> None:
        self.root, self.repeat = root, repeat
        self.project = root / "project"
        self.workspace = root / "workspace"
        self.env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("PYTHONDONTWRITEBYTECODE", "KILN_WORKSPACE")
        }
        self.env.update(KILN_CACHE_DIR=str(root / "cache"), KILN_WORKSPACE=str(self.workspace))
        self.rows: list[tuple[str, list[float]]] = []

    def kiln(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*KILN, *args], env=self.env, cwd=self.root, capture_output=True, text=True, check=True
        )

    def prepare(self) -> Path:
        mlflow_run.write_project(self.project, PACKAGES, SCRIPT_TEXT)
        self.kiln("init", str(self.workspace))
        definition = self.root / "bench.yml"
        packages = "".join(f"      - {p}\n" for p in PACKAGES)
        definition.write_text(
            f"name: bench\npython:\n  version: '3.11'\n  pip:\n    packages:\n{packages}"
        )
        self.kiln("env", "register", "-f", str(definition))
        built = json.loads(self.kiln("env", "build", "bench", "--json").stdout)
        return Path(built["interpreter"])

    def local(self, interpreter: Path) -> None:
        submit = [*KILN, "run", "submit", "--env", "bench", "-d", str(self.project), "train.py"]
        say("bare python train.py")
        bare = samples(
            self.repeat, lambda: timed([str(interpreter), "train.py"], self.env, self.project)
        )
        self.rows.append(("bare `python train.py`", bare))
        say("kiln run submit, warm")
        self.rows.append(
            (
                "`kiln run submit` (warm environment)",
                samples(self.repeat, lambda: timed(submit, self.env, self.root)),
            )
        )

        def cold() -> float:
            shutil.rmtree(self.root / "cache" / "envs", ignore_errors=True)
            shutil.rmtree(self.root / "cache" / "by-build", ignore_errors=True)
            return timed(submit, self.env, self.root)

        say("kiln run submit, cold")
        self.rows.append(
            (
                "`kiln run submit` (cold: environment built from the lock)",
                samples(max(2, self.repeat // 2), cold),
            )
        )

    def containers(self, base: str) -> None:
        """The container target against a bare ``podman run`` of the same image, and a warm
        local run, interleaved round by round (the machine is shared: load moves all three)."""
        self.env["KILN_BASE_IMAGE"] = base
        say("building the environment's image")
        image = json.loads(self.kiln("image", "build", "bench", "--json").stdout)["image"]
        mount = f"{self.project}:/work:ro"
        bare = ["podman", "run", "--rm", "--network=host", "-v", mount, "-w", "/work", image]
        bare += ["python", "train.py"]
        submit = [*KILN, "run", "submit", "--env", "bench"]
        script = ["-d", str(self.project), "train.py"]
        commands = {
            BARE_PODMAN: bare,
            CONTAINER: [*submit, "--target", "container", *script],
            "`kiln run submit` (warm environment), interleaved": [*submit, *script],
        }
        say("bare podman run, kiln run submit --target container and a warm local run")
        for command in commands.values():
            timed(command, self.env, self.root)  # untimed: bytecode, page cache, pointers
        found: dict[str, list[float]] = {label: [] for label in commands}
        for _ in range(self.repeat):
            for label, command in commands.items():
                found[label].append(timed(command, self.env, self.root))
        self.rows += list(found.items())

    def mlflow(self, mlflow_bin: Path) -> None:
        work = self.root / "mlflow"
        for manager in ("uv", "virtualenv"):
            run = {
                "mlflow_bin": mlflow_bin,
                "project_dir": self.project,
                "work_dir": work,
                "env_manager": manager,
            }
            say(f"mlflow run --env-manager {manager}")
            self.rows.append(
                (
                    f"`mlflow run --env-manager {manager}` cold",
                    samples(
                        max(2, self.repeat // 2),
                        lambda run=run: mlflow_run.mlflow_run_seconds(**run, fresh=True),
                    ),
                )
            )
            self.rows.append(
                (
                    f"`mlflow run --env-manager {manager}` warm",
                    samples(
                        self.repeat,
                        lambda run=run: mlflow_run.mlflow_run_seconds(**run, fresh=False),
                    ),
                )
            )

    def ray(self) -> None:
        from kiln.compute.ray_local import local_cluster

        say("starting a local Ray cluster")
        with local_cluster() as cluster:
            script = self.project / "train.py"
            say("ray job, pip runtime_env")
            self.rows.append(
                (
                    "Ray job, `runtime_env={'pip': [...]}` cold",
                    samples(
                        2,
                        lambda: ray_job.ray_job_seconds(
                            cluster.address, script, PACKAGES, fresh=True
                        ),
                    ),
                )
            )
            self.rows.append(
                (
                    "Ray job, `runtime_env={'pip': [...]}` warm",
                    samples(
                        self.repeat,
                        lambda: ray_job.ray_job_seconds(
                            cluster.address, script, PACKAGES, fresh=False
                        ),
                    ),
                )
            )
            submit = [
                *KILN,
                "run",
                "submit",
                "--env",
                "bench",
                "--target",
                cluster.address,
                "-d",
                str(self.project),
                "train.py",
            ]
            say("kiln run submit --target ray://")
            first = timed(submit, self.env, self.root)
            self.rows.append(("`kiln run submit --target ray://` first use of the lock", [first]))
            self.rows.append(
                (
                    "`kiln run submit --target ray://` warm",
                    [timed(submit, self.env, self.root) for _ in range(self.repeat)],
                )
            )

    def table(self) -> str:
        bare = statistics.median(self.rows[0][1])
        lines = [
            "| what | median s | min s | runs | over bare |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for label, values in self.rows:
            median = statistics.median(values)
            lines.append(
                f"| {label} | {median:.3f} | {min(values):.3f} | {len(values)} | +{(median - bare) * 1000:.0f} ms |"
            )
        return "\n".join(lines)


def _mlflow_binary(root: Path) -> Path:
    venv = root / "mlflow-venv"
    uv = Path(sys.executable).parent / "uv"
    subprocess.run([str(uv), "venv", "-q", "-p", "3.11", str(venv)], check=True)
    subprocess.run([str(uv), "pip", "install", "-q", "-p", str(venv), "mlflow-skinny"], check=True)
    return venv / "bin" / "mlflow"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--mlflow", type=Path, help="an mlflow executable (default: install mlflow-skinny)"
    )
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--no-ray", action="store_true")
    parser.add_argument("--no-containers", action="store_true")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="kiln-bench-runs-"))
    try:
        bench = Bench(root, args.repeat)
        load = os.getloadavg()[0]
        interpreter = bench.prepare()
        bench.local(interpreter)
        base = os.environ.get("KILN_BASE_IMAGE", TEST_BASE)
        if not args.no_containers and shutil.which("podman"):
            exists = subprocess.run(["podman", "image", "exists", base], check=False)
            if exists.returncode == 0:
                bench.containers(base)
            else:
                say(f"no base image {base}: container rows skipped (KILN_BASE_IMAGE names one)")
        if not args.no_mlflow:
            bench.mlflow((args.mlflow or _mlflow_binary(root)).absolute())
        if not args.no_ray:
            bench.ray()
        print(bench.table())
        rows = dict(bench.rows)
        podman, target = rows.get(BARE_PODMAN), rows.get(CONTAINER)
        if podman and target:
            # Round by round: both ran under the same load.
            extra = statistics.median(t - p for t, p in zip(target, podman, strict=True)) * 1000
            ratio = statistics.median(t / p for t, p in zip(target, podman, strict=True))
            print(
                f"\ncontainer target over bare podman run, median of paired rounds: "
                f"+{extra:.0f} ms, x{ratio:.2f} (goal: within 150 ms)"
            )
        print(f"\nload average {load:.2f} -> {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPUs")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
