"""Baseline for the runs benchmark (issue 4): a trivial script through ``mlflow run``.

An MLflow project (``MLproject`` + ``python_env.yaml`` + ``train.py``) is run with
``mlflow run --env-manager M`` and timed end to end (wall clock of the whole CLI call):

- **cold** (``fresh=True``): MLflow's environment root (``MLFLOW_ENV_ROOT``, where it keeps one
  virtualenv per hash of the python_env) is emptied first, so MLflow creates the virtualenv and
  installs the packages again. The package caches (uv's, pip's) stay filled unless
  ``empty_package_cache=True``;
- **warm** (``fresh=False``): the environment from an earlier call is reused (MLflow only checks
  that its folder exists, then activates it and runs the command).

Env managers: ``uv`` (``uv venv`` + ``uv pip install``), ``virtualenv`` (``pyenv install
--skip-existing X.Y.Z`` + ``python -m venv`` + ``pip install``) and ``local`` (no environment:
the command runs with whatever ``python`` is first on PATH; here a venv with the same packages,
the one the bare ``python train.py`` baseline uses, so "local" is MLflow's own overhead).

Everything lives under ``work_dir``: the tracking store (a file store; ``mlflow-skinny`` has no
SQLAlchemy, and MLflow 3 refuses file stores unless ``MLFLOW_ALLOW_FILE_STORE=true``), the env
roots (one per env manager: both managers hash a python_env to the same folder name), and the
uv/pip/XDG caches, so nothing under ~ is touched. Telemetry is off. pip's machine-wide config is
switched off so pip uses the registry uv uses, as ``bench/build.py`` does.

Run: ``python bench/baselines/mlflow_run.py --mlflow /path/to/venv/bin/mlflow`` (a venv with
``mlflow`` or ``mlflow-skinny``; ``uv`` is taken from next to that ``mlflow``, next to this
interpreter, or from PATH). Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV_MANAGERS = ("uv", "virtualenv", "local")
SCRIPT = "train.py"
DEFAULT_PACKAGES = ["six==1.16.0"]
DEFAULT_SCRIPT_TEXT = 'import six\n\nprint("six", six.__version__)\n'


def write_project(
    dir: Path,
    packages: list[str],
    script_text: str,
    *,
    python: str | None = None,
) -> None:
    """Write an MLflow project with a python_env into ``dir``: entry point ``python train.py``.

    ``python`` defaults to the full version of this interpreter (e.g. ``3.11.7``). A full
    version matters for ``--env-manager virtualenv``: MLflow turns ``3.11`` into the newest
    3.11.x that ``pyenv install --list`` knows and runs ``pyenv install`` for it, which
    downloads unless exactly that version is installed. uv accepts either.
    """
    dir.mkdir(parents=True, exist_ok=True)
    version = python or platform.python_version()
    (dir / "MLproject").write_text(
        "name: kiln-bench-trivial\n"
        "python_env: python_env.yaml\n"
        "entry_points:\n"
        "  main:\n"
        f'    command: "python {SCRIPT}"\n'
    )
    lines = [f'python: "{version}"', "build_dependencies:", "  - pip", "dependencies:"]
    lines += [f'  - "{package}"' for package in packages]
    (dir / "python_env.yaml").write_text("\n".join(lines) + "\n")
    (dir / SCRIPT).write_text(script_text)


def project_packages(project_dir: Path) -> tuple[str, list[str]]:
    """The python version and the dependencies of a project written by ``write_project``."""
    python, packages, section = "", [], ""
    for raw in (project_dir / "python_env.yaml").read_text().splitlines():
        line = raw.strip()
        if line.startswith("python:"):
            python = line.split(":", 1)[1].strip().strip("\"'")
        elif line.endswith(":"):
            section = line[:-1]
        elif line.startswith("- ") and section == "dependencies":
            packages.append(line[2:].strip().strip("\"'"))
    return python, packages


def _uv_binary(mlflow_bin: Path) -> Path:
    for candidate in (mlflow_bin.parent / "uv", Path(sys.executable).parent / "uv"):
        if candidate.is_file():
            return candidate
    found = shutil.which("uv")
    if found is None:
        raise RuntimeError("uv not found next to mlflow, next to this Python, or on PATH")
    return Path(found)


def _tracking_uri(work_dir: Path, tracking: str) -> str:
    if tracking == "file":
        return (work_dir / "mlruns").as_uri()
    if tracking == "sqlite":
        return f"sqlite:///{work_dir / 'mlflow.db'}"
    raise ValueError("tracking must be 'file' or 'sqlite'")


def _base_env(
    work_dir: Path, mlflow_bin: Path, env_manager: str, tracking: str = "file"
) -> dict[str, str]:
    """The caller's environment without settings that change what a tool does, plus MLflow's."""
    dropped = ("UV_", "PIP_", "KILN_", "MLFLOW_", "VIRTUAL_ENV", "CONDA_", "PYTHON")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    bin_dir = work_dir / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    uv_link = bin_dir / "uv"
    if not uv_link.exists():
        uv_link.symlink_to(_uv_binary(mlflow_bin))
    path = [str(bin_dir)]
    if env_manager == "local":
        path.insert(0, str(local_venv(work_dir) / "bin"))
    env["PATH"] = os.pathsep.join([*path, env.get("PATH", "")])
    env.update(
        MLFLOW_TRACKING_URI=_tracking_uri(work_dir, tracking),
        MLFLOW_ALLOW_FILE_STORE="true",
        MLFLOW_ENV_ROOT=str(_env_root(work_dir, env_manager)),
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
        XDG_CACHE_HOME=str(work_dir / "xdg-cache"),
        UV_CACHE_DIR=str(work_dir / "uv-cache"),
        UV_NO_CONFIG="1",
        UV_PYTHON_DOWNLOADS="never",
        PIP_CACHE_DIR=str(work_dir / "pip-cache"),
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    certificates = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
    if certificates:
        env["PIP_CERT"] = certificates
    return env


def _env_root(work_dir: Path, env_manager: str) -> Path:
    return work_dir / "envs" / env_manager


def local_venv(work_dir: Path) -> Path:
    """The venv the bare run and ``--env-manager local`` use (made by ``prepare_local``)."""
    return work_dir / "local-venv"


def prepare_local(mlflow_bin: Path, project_dir: Path, work_dir: Path) -> Path:
    """Make the venv with the project's packages; return its ``python``."""
    venv = local_venv(work_dir)
    python = venv / "bin" / "python"
    if python.exists():
        return python
    version, packages = project_packages(project_dir)
    env = _base_env(work_dir, mlflow_bin, "uv")
    uv = str(work_dir / "bin" / "uv")
    _check([uv, "venv", "-q", "-p", version, str(venv)], env, work_dir / "local-venv.log")
    if packages:
        _check(
            [uv, "pip", "install", "-q", "-p", str(python), *packages],
            env,
            work_dir / "local-venv.log",
        )
    return python


def _check(command: list[str], env: dict[str, str], log: Path, cwd: Path | None = None) -> None:
    with log.open("a") as out:
        result = subprocess.run(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-30:])
        raise RuntimeError(f"{' '.join(command)} exited {result.returncode}:\n{tail}")


def _timed(command: list[str], env: dict[str, str], log: Path, cwd: Path) -> float:
    log.write_text("")
    started = time.perf_counter()
    _check(command, env, log, cwd)
    return time.perf_counter() - started


def mlflow_run_seconds(
    mlflow_bin: Path,
    project_dir: Path,
    *,
    env_manager: str,
    fresh: bool,
    work_dir: Path,
    empty_package_cache: bool = False,
    tracking: str = "file",
) -> float:
    """Wall-clock seconds of one ``mlflow run --env-manager M project_dir``.

    ``fresh``: empty this manager's ``MLFLOW_ENV_ROOT`` first (MLflow builds the environment);
    otherwise the environment of an earlier call is reused (the first call builds it).
    ``empty_package_cache``: also empty the uv and pip caches (packages are downloaded).
    Both are no-ops for ``local``, which builds nothing. ``tracking``: ``file`` (a file store,
    works with mlflow-skinny) or ``sqlite`` (MLflow 3's default kind of store; needs the full
    ``mlflow`` or SQLAlchemy and Alembic). Raises ``RuntimeError`` with the end
    of the log if the run fails.
    """
    if env_manager not in ENV_MANAGERS:
        raise ValueError(f"env_manager must be one of {', '.join(ENV_MANAGERS)}")
    work_dir.mkdir(parents=True, exist_ok=True)
    env = _base_env(work_dir, mlflow_bin, env_manager, tracking)
    if env_manager == "local":
        prepare_local(mlflow_bin, project_dir, work_dir)
    if fresh:
        shutil.rmtree(_env_root(work_dir, env_manager), ignore_errors=True)
    if empty_package_cache:
        for cache in ("uv-cache", "pip-cache"):
            shutil.rmtree(work_dir / cache, ignore_errors=True)
    command = [str(mlflow_bin), "run", "--env-manager", env_manager, str(project_dir)]
    return _timed(command, env, work_dir / f"mlflow-{env_manager}.log", project_dir)


def bare_python_seconds(python: Path, project_dir: Path, work_dir: Path) -> float:
    """Wall-clock seconds of ``python train.py`` in ``project_dir``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    return _timed([str(python), SCRIPT], env, work_dir / "bare.log", project_dir)


def _row(label: str, samples: list[float]) -> str:
    median = statistics.median(samples)
    return f"| {label} | {median:.3f} | {min(samples):.3f} | {max(samples):.3f} | {len(samples)} |"


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mlflow", type=Path, required=True, help="the mlflow executable")
    parser.add_argument("--repeat", type=int, default=7, help="warm and bare runs (default 7)")
    parser.add_argument("--cold-repeat", type=int, default=3, help="cold runs (default 3)")
    parser.add_argument(
        "--env-manager",
        action="append",
        choices=ENV_MANAGERS,
        help="repeatable; default: all of " + ", ".join(ENV_MANAGERS),
    )
    parser.add_argument(
        "--package", action="append", help=f"repeatable; default {DEFAULT_PACKAGES}"
    )
    parser.add_argument(
        "--tracking",
        choices=("file", "sqlite"),
        default="file",
        help="tracking store under the work dir (default file; sqlite needs the full mlflow)",
    )
    parser.add_argument("--work-dir", type=Path, help="keep everything here (default: a temp dir)")
    args = parser.parse_args(argv)
    mlflow_bin = args.mlflow.absolute()
    managers = args.env_manager or list(ENV_MANAGERS)
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="kiln-bench-mlflow-"))
    work_dir = work_dir.absolute()
    project = work_dir / "project"
    write_project(project, args.package or DEFAULT_PACKAGES, DEFAULT_SCRIPT_TEXT)

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    load_before = _load()
    version_env = _base_env(work_dir, mlflow_bin, "uv")
    mlflow_version = subprocess.run(
        [str(mlflow_bin), "--version"], env=version_env, capture_output=True, text=True
    ).stdout.strip()
    uv_version = subprocess.run(
        [str(work_dir / "bin" / "uv"), "--version"], capture_output=True, text=True
    ).stdout.strip()
    python = prepare_local(mlflow_bin, project, work_dir)
    # Untimed: the first `mlflow run` may write bytecode for the modules it imports.
    say("warm-up")
    mlflow_run_seconds(
        mlflow_bin,
        project,
        env_manager="local",
        fresh=False,
        work_dir=work_dir,
        tracking=args.tracking,
    )
    rows: list[str] = []

    say("bare python train.py")
    bare_python_seconds(python, project, work_dir)
    rows.append(
        _row(
            f"bare `python {SCRIPT}`",
            [bare_python_seconds(python, project, work_dir) for _ in range(args.repeat)],
        )
    )
    say("mlflow --version")
    version_command = [str(mlflow_bin), "--version"]
    samples = [
        _timed(version_command, version_env, work_dir / "version.log", work_dir)
        for _ in range(args.repeat)
    ]
    rows.append(_row("`mlflow --version` (CLI start only)", samples))
    for manager in managers:
        run = {
            "mlflow_bin": mlflow_bin,
            "project_dir": project,
            "work_dir": work_dir,
            "tracking": args.tracking,
        }
        label = f"`mlflow run --env-manager {manager}`"
        if manager == "local":
            say("mlflow run local")
            mlflow_run_seconds(**run, env_manager=manager, fresh=False)
            samples = [
                mlflow_run_seconds(**run, env_manager=manager, fresh=False)
                for _ in range(args.repeat)
            ]
            rows.append(_row(f"{label} (no environment)", samples))
            continue
        say(f"mlflow run {manager}: cold, empty package cache")
        samples = [
            mlflow_run_seconds(**run, env_manager=manager, fresh=True, empty_package_cache=True)
            for _ in range(args.cold_repeat)
        ]
        rows.append(_row(f"{label} cold, empty package cache", samples))
        say(f"mlflow run {manager}: cold")
        samples = [
            mlflow_run_seconds(**run, env_manager=manager, fresh=True)
            for _ in range(args.cold_repeat)
        ]
        rows.append(_row(f"{label} cold (package cache filled)", samples))
        say(f"mlflow run {manager}: warm")
        samples = [
            mlflow_run_seconds(**run, env_manager=manager, fresh=False) for _ in range(args.repeat)
        ]
        rows.append(_row(f"{label} warm", samples))

    print(f"{mlflow_version}; {uv_version}; Python {platform.python_version()}; ", end="")
    print(
        f"packages {args.package or DEFAULT_PACKAGES}; {args.tracking} tracking store; load {load_before} -> {_load()}"
    )
    print()
    print("| what | median s | min s | max s | n |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))
    if args.work_dir is None:
        shutil.rmtree(work_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
