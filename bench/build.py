"""Build benchmark: Kiln against what users would otherwise run, same packages, same machine.

Prints one table against the goals from issues 3 and 14:

- warm reuse: ``kiln env exec NAME -- python -c pass`` on a built environment vs the bare
  ``python -c pass`` of that environment's own interpreter (median of many runs);
- a build with empty caches (fresh ``KILN_CACHE_DIR``, fresh uv cache, fresh workspace so Kiln
  resolves like the others do) and with a warm package cache (uv cache filled, no built
  environment; for Kiln that means its package caches: uv's, the shared bytecode and the
  remembered interpreter), vs raw ``uv venv && uv pip install`` (cold and warm uv cache), and vs
  ``python -m venv && pip install`` (what MLflow's virtualenv manager and Ray's pip runtime env
  do: ``--no-cache-dir`` cold, a filled temporary ``PIP_CACHE_DIR`` warm);
- a build from a lock already in the workspace on a fresh cache (and a warm one) vs ``uv venv
  && uv pip sync`` of the same lock exported as hashed requirements (``kiln env lock``);
- ``kiln env show NAME`` and an unchanged ``kiln env register`` vs ``python -c pass`` of the
  interpreter Kiln runs on, and a warm ``kiln env exec`` vs ``uv run --no-project --python
  ENV_PYTHON python -c pass``;
- disk use of N environments sharing a base package set (plus one distinct small package each)
  vs one of them, counting each inode once across all folders, for Kiln (its ``envs/`` folders
  alone, and with its uv cache) and for plain ``python -m venv`` + pip (alone, and with pip's
  cache).

Every tool gets the same interpreter (the one Kiln picks), the same package registry (pip's
machine-wide config is switched off, so it uses the index uv uses) and the same machine; runs
are interleaved, and a build's background bytecode job is waited for before the next
measurement starts. Everything lives in one temporary folder that is removed at the end; nothing
under ~/.cache is touched. Progress goes to stderr, the table to stdout.

Run: ``python bench/build.py [--quick] [--repeat N]`` (``--quick``: the tiny package set,
3 environments, fewer repeats; a smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from kiln import catalog
from kiln.environment.definition import EnvironmentDefinition
from kiln.execcard import SETTLED_NS
from kiln.workspace import Workspace


@dataclass(frozen=True)
class PackageSet:
    label: str
    packages: list[str]
    modules: list[str]  # what `import` after a build loads


FULL = PackageSet(
    "numpy+pandas+scikit-learn",
    ["numpy==2.4.6", "pandas==3.1.1", "scikit-learn==1.9.1"],
    ["numpy", "pandas", "sklearn"],
)
TINY = PackageSet("six+attrs", ["six==1.17.0", "attrs==26.1.0"], ["six", "attr"])
# One distinct small pure-Python package per environment of the disk test (no dependencies).
EXTRAS = [
    "idna==3.20",
    "certifi==2026.10.18",
    "packaging==26.3",
    "pyparsing==3.3.3",
    "toolz==1.2.0",
    "click==8.5.1",
    "tqdm==4.70.1",
    "decorator==5.3.1",
    "wcwidth==0.9.4",
    "tabulate==0.10.0",
]
# Folders under KILN_CACHE_DIR: uv's cache and what Kiln knows it holds, shared bytecode,
# remembered interpreters.
KILN_PACKAGE_CACHES = ("uv", "uv-held", "bytecode", "interpreters")
PHASE_LINE = re.compile(r"^kiln: building \S+: (\w[\w ]*)$")
STARTUP = "start-up"

# Goals from issues 3 and 14.
EXEC_OVERHEAD_MS = 100.0
VS_UV = 1.15
VS_UV_WARM = 1.2
VS_UV_SYNC = 1.1
READ_OVERHEAD_MS = 60.0
VS_PIP = 10.0
DISK = 1.5


STARTED = time.perf_counter()


def log(text: str) -> None:
    print(f"[{time.perf_counter() - STARTED:6.0f} s] {text}", file=sys.stderr, flush=True)


class Failed(RuntimeError):
    pass


def tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def disk_usage(folders: list[Path]) -> int:
    """Bytes allocated under ``folders`` (like ``du``), each inode counted once across all."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for folder in folders:
        for base, dirs, files in os.walk(folder):
            for name in [".", *dirs, *files]:
                try:
                    info = os.lstat(os.path.join(base, name))  # noqa: PTH118 - hot loop
                except OSError:
                    continue
                identity = (info.st_dev, info.st_ino)
                if identity not in seen:
                    seen.add(identity)
                    total += info.st_blocks * 512
    return total


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


@dataclass
class KilnRun:
    seconds: float
    phases: dict[str, float]  # seconds spent in each phase, STARTUP first
    interpreter: Path
    path: Path
    packages: int


@dataclass
class Results:
    """Seconds per (package set label, scenario)."""

    times: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    phases: dict[tuple[str, str], list[dict[str, float]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    packages: dict[str, int] = field(default_factory=dict)
    # Bytes a warm build added to its package cache: more than a little means it downloaded.
    growth: dict[tuple[str, str], list[int]] = field(default_factory=lambda: defaultdict(list))
    pip_cache: dict[str, int] = field(default_factory=dict)  # after the filling install

    def add(self, pset: PackageSet, scenario: str, seconds: float) -> None:
        self.times[pset.label, scenario].append(seconds)

    def get(self, pset: PackageSet, scenario: str) -> float:
        return median(self.times[pset.label, scenario])


class Bench:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.kiln = self._kiln_script()
        from uv import find_uv_bin

        self.uv = str(find_uv_bin())
        self.serial = 0
        (root / "xdg-cache").mkdir()
        (root / "work").mkdir()
        self.python = self._base_interpreter()

    def _kiln_script(self) -> str:
        """The installed ``kiln`` script, importing Kiln from where this benchmark imported it
        (a worktree's ``src/`` is not the installed package, and the benchmark drops
        ``PYTHONPATH`` from every command's environment)."""
        import kiln

        script = self.root / "kiln"
        script.write_text(
            f"#!{sys.executable}\n"
            "import sys\n"
            f"sys.path.insert(0, {str(Path(kiln.__file__).parents[1])!r})\n"
            "from kiln.cli.main import main\n"
            "sys.exit(main())\n"
        )
        script.chmod(0o755)
        return str(script)

    # -- plumbing ----------------------------------------------------------------------------

    def fresh(self, stem: str) -> Path:
        """A new, not yet existing path under the temporary root."""
        self.serial += 1
        return self.root / f"{stem}-{self.serial}"

    def env(self, **extra: str) -> dict[str, str]:
        """The caller's environment without settings that would change what a tool does."""
        # PYTHON* too: e.g. PYTHONDONTWRITEBYTECODE, set in some sandboxes, slows every import.
        dropped = ("UV_", "PIP_", "KILN_", "VIRTUAL_ENV", "CONDA_", "PYTHON")
        env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
        # Nothing may land in ~/.cache: anything that falls back to XDG goes to the temp root.
        env["XDG_CACHE_HOME"] = str(self.root / "xdg-cache")
        env.update(extra)
        return env

    def uv_env(self, cache: Path) -> dict[str, str]:
        return self.env(UV_CACHE_DIR=str(cache), UV_NO_CONFIG="1", UV_PYTHON_DOWNLOADS="never")

    def pip_env(self, cache: Path | None) -> dict[str, str]:
        # The machine-wide pip.conf adds local wheel folders; switch it off so pip downloads from
        # the same registry uv uses, as it would on a user's machine.
        extra = {"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
        certificates = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
        if certificates:
            extra["PIP_CERT"] = certificates
        if cache is not None:
            extra["PIP_CACHE_DIR"] = str(cache)
        return self.env(**extra)

    def kiln_env(self, workspace: Path, cache: Path) -> dict[str, str]:
        return self.env(KILN_WORKSPACE=str(workspace), KILN_CACHE_DIR=str(cache))

    def run(self, commands: list[list[str]], env: dict[str, str]) -> float:
        """Wall-clock seconds of running ``commands`` one after the other (``a && b``)."""
        started = time.perf_counter()
        for command in commands:
            result = subprocess.run(
                command, cwd=self.root / "work", env=env, capture_output=True, text=True
            )
            if result.returncode != 0:
                raise Failed(
                    f"`{' '.join(command)}` exited with {result.returncode}:\n"
                    f"{tail(result.stderr + result.stdout)}"
                )
        return time.perf_counter() - started

    def _base_interpreter(self) -> str:
        """The interpreter Kiln's venv builder picks for python 3.11; every tool gets it."""
        result = subprocess.run(
            [self.uv, "python", "find", "--python-preference", "only-system", "3.11"],
            cwd=self.root / "work",
            env=self.uv_env(self.root / "uv-probe"),
            capture_output=True,
            text=True,
            check=True,
        )
        shutil.rmtree(self.root / "uv-probe", ignore_errors=True)
        return result.stdout.strip()

    # -- Kiln --------------------------------------------------------------------------------

    def workspace(self, environments: dict[str, list[str]]) -> Path:
        """A fresh workspace with ``environments`` (name -> pip packages) registered."""
        folder = self.fresh("workspace")
        ws = Workspace.create(folder)
        for name, packages in environments.items():
            definition = EnvironmentDefinition.model_validate(
                {"name": name, "python": {"version": "3.11", "pip": {"packages": packages}}}
            )
            catalog.register(ws, definition)
        ws.close()
        return folder

    def kiln_build(self, name: str, workspace: Path, cache: Path) -> KilnRun:
        """``kiln env build NAME`` timed, with when each phase line appeared on stderr."""
        command = [self.kiln, "env", "build", name, "--json"]
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            cwd=self.root / "work",
            env=self.kiln_env(workspace, cache),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None and process.stderr is not None
        marks: list[tuple[str, float]] = []
        errors = []
        for line in process.stderr:  # the JSON on stdout is small: no deadlock
            errors.append(line)
            match = PHASE_LINE.match(line.strip())
            if match:
                marks.append((match.group(1), time.perf_counter() - started))
        output = process.stdout.read()
        code = process.wait()
        seconds = time.perf_counter() - started
        if code != 0:
            raise Failed(f"`kiln env build {name}` exited with {code}:\n{tail(''.join(errors))}")
        info = json.loads(output)
        if not info["built"]:
            raise Failed(f"`kiln env build {name}` reused a build; the benchmark expected a build")
        phases: dict[str, float] = {}
        previous_name, previous_time = STARTUP, 0.0
        for phase, at in [*marks, ("", seconds)]:
            phases[previous_name] = phases.get(previous_name, 0.0) + at - previous_time
            previous_name, previous_time = phase, at
        return KilnRun(
            seconds, phases, Path(info["interpreter"]), Path(info["path"]), info["packages"]
        )

    # -- the others --------------------------------------------------------------------------

    def uv_build(self, packages: list[str], cache: Path) -> tuple[float, Path]:
        venv = self.fresh("uv-venv")
        seconds = self.run(
            [
                [self.uv, "venv", "--quiet", "--python", self.python, str(venv)],
                [
                    self.uv,
                    "pip",
                    "install",
                    "--quiet",
                    "--python",
                    str(venv / "bin" / "python"),
                    *packages,
                ],
            ],
            self.uv_env(cache),
        )
        return seconds, venv

    def export_lock(self, name: str, workspace: Path) -> Path:
        """The workspace's lock of ``name`` as hashed requirements (what ``uv pip sync`` takes)."""
        target = self.fresh("lock").with_suffix(".txt")
        command = [self.kiln, "env", "lock", name, "--format", "requirements", "-o", str(target)]
        self.run([command], self.kiln_env(workspace, self.fresh("kiln-cache")))
        return target

    def uv_sync(self, requirements: Path, cache: Path) -> tuple[float, Path]:
        venv = self.fresh("uv-venv")
        python = str(venv / "bin" / "python")
        sync = [self.uv, "pip", "sync", "--quiet", "--require-hashes", "--python", python]
        seconds = self.run(
            [
                [self.uv, "venv", "--quiet", "--python", self.python, str(venv)],
                [*sync, str(requirements)],
            ],
            self.uv_env(cache),
        )
        return seconds, venv

    def pip_build(self, packages: list[str], cache: Path | None) -> tuple[float, Path]:
        venv = self.fresh("pip-venv")
        seconds = self.run(
            [
                [self.python, "-m", "venv", str(venv)],
                [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
                + (["--no-cache-dir"] if cache is None else [])
                + packages,
            ],
            self.pip_env(cache),
        )
        return seconds, venv

    def first_import(self, interpreter: Path, pset: PackageSet) -> float:
        """Seconds of the first ``import`` of the set's packages in a new environment."""
        code = "import " + ", ".join(pset.modules)
        return self.run([[str(interpreter), "-c", code]], self.env())


def move(source: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, destination)


def rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def wait_for_jobs(cache: Path) -> None:
    """Wait until a new build's bytecode job has ended: it must not run into the next
    measurement."""
    from kiln.builders.bytecodejob import running

    while running(cache / "envs"):
        time.sleep(0.05)


def bench_builds(bench: Bench, pset: PackageSet, repeat: int, results: Results) -> None:
    """Cold and warm builds of ``pset`` by Kiln, raw uv and venv + pip, interleaved."""
    # Kiln's package caches (uv's, shared bytecode, remembered interpreters), kept between warm
    # runs: what a machine that has built other environments has.
    warm_kiln_uv = bench.fresh("warm-kiln-caches")
    warm_uv = bench.fresh("warm-uv")
    warm_pip = bench.fresh("warm-pip")
    log(f"{pset.label}: filling the warm pip cache")
    _, venv = bench.pip_build(pset.packages, warm_pip)
    rmtree(venv)
    results.pip_cache[pset.label] = disk_usage([warm_pip])
    environments = {"bench": pset.packages}

    def record(scenario: str, seconds: float, interpreter: Path) -> None:
        results.add(pset, scenario, seconds)
        results.add(pset, scenario + " +import", seconds + bench.first_import(interpreter, pset))
        log(f"{pset.label}: {scenario}: {seconds:.2f} s")

    def kiln(scenario: str, workspace: Path, caches: Path | None) -> None:
        cache = bench.fresh("kiln-cache")
        warm = caches is not None and caches.exists()
        if warm:
            assert caches is not None
            before = disk_usage([caches / "uv"])
            for name in KILN_PACKAGE_CACHES:
                if (caches / name).exists():
                    move(caches / name, cache / name)
            rmtree(caches)
        run = bench.kiln_build("bench", workspace, cache)
        record(scenario, run.seconds, run.interpreter)
        wait_for_jobs(cache)
        if warm:
            results.growth[pset.label, scenario].append(disk_usage([cache / "uv"]) - before)
        results.packages[pset.label] = run.packages
        results.phases[pset.label, scenario].append(run.phases)
        if caches is not None and not caches.exists():
            for name in KILN_PACKAGE_CACHES:
                if (cache / name).exists():
                    move(cache / name, caches / name)
        rmtree(cache)

    for attempt in range(repeat):
        log(f"{pset.label}: round {attempt + 1} of {repeat}")
        locked = bench.workspace(environments)  # resolved by the cold build below
        kiln("kiln cold", locked, warm_kiln_uv if not warm_kiln_uv.exists() else None)
        uv_cache = bench.fresh("uv-cache")
        seconds, venv = bench.uv_build(pset.packages, uv_cache)
        record("uv cold", seconds, venv / "bin" / "python")
        rmtree(venv)
        if warm_uv.exists():
            rmtree(uv_cache)
        else:
            move(uv_cache, warm_uv)
        seconds, venv = bench.pip_build(pset.packages, None)
        record("pip cold", seconds, venv / "bin" / "python")
        rmtree(venv)
        requirements = bench.export_lock("bench", locked)

        def uv_sync_cold(requirements: Path) -> None:
            uv_cache = bench.fresh("uv-cache")
            seconds, venv = bench.uv_sync(requirements, uv_cache)
            record("uv sync cold", seconds, venv / "bin" / "python")
            rmtree(venv)
            rmtree(uv_cache)

        # Which of the two downloads the same files first alternates: the index's answers get
        # faster the second time (1.18x one way round against 1.05x alternated, here).
        if attempt % 2:
            uv_sync_cold(requirements)
        kiln("kiln lock known, fresh cache", locked, None)
        if not attempt % 2:
            uv_sync_cold(requirements)

        kiln("kiln warm", bench.workspace(environments), warm_kiln_uv)
        kiln("kiln warm, lock known", locked, warm_kiln_uv)
        before = disk_usage([warm_uv])
        seconds, venv = bench.uv_build(pset.packages, warm_uv)
        results.growth[pset.label, "uv warm"].append(disk_usage([warm_uv]) - before)
        record("uv warm", seconds, venv / "bin" / "python")
        rmtree(venv)
        seconds, venv = bench.uv_sync(requirements, warm_uv)
        record("uv sync warm", seconds, venv / "bin" / "python")
        rmtree(venv)
        seconds, venv = bench.pip_build(pset.packages, warm_pip)
        record("pip warm", seconds, venv / "bin" / "python")
        rmtree(venv)
        rmtree(locked)
    for folder in (warm_kiln_uv, warm_uv, warm_pip):
        rmtree(folder)


@dataclass
class Reads:
    """Median ms of the commands that read a built environment, and their peers."""

    ms: dict[str, float]


READ_COMMANDS = ("kiln exec", "env python", "uv run", "kiln show", "kiln register", "python")


def bench_reads(bench: Bench, pset: PackageSet, repeat: int) -> Reads:
    """``kiln env exec|show`` and an unchanged ``register`` of a built environment, and their
    peers: the environment's own interpreter, ``uv run`` of it, Kiln's own interpreter."""
    workspace = bench.workspace({"bench": pset.packages})
    cache = bench.fresh("kiln-cache")
    run = bench.kiln_build("bench", workspace, cache)
    wait_for_jobs(cache)
    definition = bench.root / "work" / "kiln.yaml"  # JSON is YAML
    definition.write_text(
        json.dumps(
            {"name": "bench", "python": {"version": "3.11", "pip": {"packages": pset.packages}}}
        )
    )
    uv_run = [bench.uv, "run", "--no-project", "--python", str(run.interpreter)]
    commands = {
        "kiln exec": [bench.kiln, "env", "exec", "bench", "--", "python", "-c", "pass"],
        "env python": [str(run.interpreter), "-c", "pass"],
        "uv run": [*uv_run, "python", "-c", "pass"],
        "kiln show": [bench.kiln, "env", "show", "bench"],
        "kiln register": [bench.kiln, "env", "register", "-f", str(definition)],
        "python": [sys.executable, "-c", "pass"],
    }
    uv_cache = bench.fresh("uv-run-cache")
    environments = {
        "kiln exec": bench.kiln_env(workspace, cache),
        "kiln show": bench.kiln_env(workspace, cache),
        "kiln register": bench.kiln_env(workspace, cache),
        "uv run": bench.uv_env(uv_cache),
    }
    # A warm exec starts from its exec card once the registry has settled (kiln.execcard):
    # measured as a user's execs a few seconds after a build, not in the 2 s right after it.
    time.sleep(SETTLED_NS / 1e9)
    times: dict[str, list[float]] = defaultdict(list)
    for attempt in range(repeat + 2):  # two warm-up rounds, then interleaved
        for name in READ_COMMANDS:
            seconds = bench.run([commands[name]], environments.get(name, bench.env()))
            if attempt >= 2:
                times[name].append(seconds * 1000)
    for folder in (cache, workspace, uv_cache):
        rmtree(folder)
    reads = Reads({name: median(values) for name, values in times.items()})
    log("reads: " + ", ".join(f"{name} {ms:.0f} ms" for name, ms in reads.ms.items()))
    return reads


def read_rows(reads: Reads) -> list[Row]:
    ms = reads.ms

    def over(name: str, peer: str) -> float:
        return ms[name] - ms[peer]

    return [
        (
            "kiln env exec NAME -- python -c pass",
            f"{ms['kiln exec']:.0f} ms",
            "the env's python -c pass",
            f"{ms['env python']:.0f} ms",
            f"+{over('kiln exec', 'env python'):.0f} ms",
            f"<= +{EXEC_OVERHEAD_MS:.0f} ms",
            verdict(over("kiln exec", "env python") <= EXEC_OVERHEAD_MS),
        ),
        (
            "",
            "",
            "uv run --no-project --python ENV",
            f"{ms['uv run']:.0f} ms",
            f"{ms['kiln exec'] / ms['uv run']:.2f}x",
            "<= 1.00x",
            verdict(ms["kiln exec"] <= ms["uv run"]),
        ),
        *[
            (
                label,
                f"{ms[name]:.0f} ms",
                "Kiln's python -c pass",
                f"{ms['python']:.0f} ms",
                f"+{over(name, 'python'):.0f} ms",
                f"<= +{READ_OVERHEAD_MS:.0f} ms",
                verdict(over(name, "python") <= READ_OVERHEAD_MS),
            )
            for label, name in (
                ("kiln env show NAME", "kiln show"),
                ("kiln env register, unchanged", "kiln register"),
            )
        ],
    ]


@dataclass
class Disk:
    one: int
    all: int
    one_with_cache: int
    all_with_cache: int


def bench_disk_kiln(bench: Bench, pset: PackageSet, count: int) -> Disk:
    names = {f"disk-{i}": [*pset.packages, EXTRAS[i]] for i in range(count)}
    workspace = bench.workspace(names)
    cache = bench.fresh("kiln-cache")
    paths = []
    sizes = []
    for i, name in enumerate(names):
        run = bench.kiln_build(name, workspace, cache)
        paths.append(run.path)
        log(f"disk: kiln environment {i + 1} of {count} built in {run.seconds:.1f} s")
        if i == 0:
            sizes += [disk_usage(paths), disk_usage([*paths, cache / "uv"])]
    disk = Disk(sizes[0], disk_usage(paths), sizes[1], disk_usage([*paths, cache / "uv"]))
    rmtree(cache)
    rmtree(workspace)
    return disk


def bench_disk_pip(bench: Bench, pset: PackageSet, count: int) -> Disk:
    cache = bench.fresh("pip-cache")
    venvs = []
    sizes = []
    for i in range(count):
        seconds, venv = bench.pip_build([*pset.packages, EXTRAS[i]], cache)
        venvs.append(venv)
        log(f"disk: venv + pip environment {i + 1} of {count} built in {seconds:.1f} s")
        if i == 0:
            sizes += [disk_usage(venvs), disk_usage([*venvs, cache])]
    disk = Disk(sizes[0], disk_usage(venvs), sizes[1], disk_usage([*venvs, cache]))
    for venv in venvs:
        rmtree(venv)
    rmtree(cache)
    return disk


# -- the table -------------------------------------------------------------------------------


def seconds_text(value: float) -> str:
    return f"{value:.2f} s" if value < 100 else f"{value:.0f} s"


def size_text(value: int) -> str:
    return f"{value / 2**20:,.0f} MiB" if value >= 10 * 2**20 else f"{value / 2**20:.1f} MiB"


def verdict(ok: bool | None) -> str:
    return "" if ok is None else ("met" if ok else "MISSED")


Row = tuple[str, str, str, str, str, str, str]


def build_rows(results: Results, pset: PackageSet) -> list[Row]:
    rows: list[Row] = []
    for label, kiln_scenario, suffix, goal in [
        ("build, empty caches", "kiln cold", "cold", VS_UV),
        ("build, warm package cache", "kiln warm", "warm", VS_UV_WARM),
    ]:
        kiln = results.get(pset, kiln_scenario)
        uv, pip = results.get(pset, f"uv {suffix}"), results.get(pset, f"pip {suffix}")
        uv_label = "uv venv + uv pip install" + (" (cold cache)" if suffix == "cold" else "")
        pip_label = "venv + pip" + (" --no-cache-dir" if suffix == "cold" else " (warm cache)")
        rows.append(
            (
                label,
                seconds_text(kiln),
                uv_label,
                seconds_text(uv),
                f"{kiln / uv:.2f}x",
                f"<= {goal}x",
                verdict(kiln / uv <= goal),
            )
        )
        rows.append(
            (
                "",
                "",
                pip_label,
                seconds_text(pip),
                f"{pip / kiln:.1f}x faster",
                f">= {VS_PIP:.0f}x faster",
                verdict(pip / kiln >= VS_PIP),
            )
        )
    sync_rows: list[tuple[str, str, str, float | None]] = [
        (
            "build from a stored lock, fresh cache",
            "kiln lock known, fresh cache",
            "cold",
            VS_UV_SYNC,
        ),
        ("  same, warm package cache", "kiln warm, lock known", "warm", None),
    ]
    for label, kiln_scenario, suffix, sync_goal in sync_rows:
        kiln, uv = results.get(pset, kiln_scenario), results.get(pset, f"uv sync {suffix}")
        rows.append(
            (
                label,
                seconds_text(kiln),
                f"uv venv + uv pip sync ({'cold' if suffix == 'cold' else 'warm'} cache)",
                seconds_text(uv),
                f"{kiln / uv:.2f}x",
                f"<= {sync_goal}x" if sync_goal else "(info)",
                verdict(kiln / uv <= sync_goal) if sync_goal else "",
            )
        )
    kiln = results.get(pset, "kiln warm +import")
    uv, pip = results.get(pset, "uv warm +import"), results.get(pset, "pip warm +import")
    rows.append(
        (
            "  warm, build + first import",
            seconds_text(kiln),
            "uv + first import",
            seconds_text(uv),
            f"{kiln / uv:.2f}x",
            "(info)",
            "",
        )
    )
    rows.append(
        (
            "",
            "",
            "venv + pip + first import",
            seconds_text(pip),
            f"{pip / kiln:.1f}x faster",
            "",
            "",
        )
    )
    return rows


def disk_rows(kiln: Disk, pip: Disk, count: int) -> list[Row]:
    def ratio(disk: Disk, cache: bool) -> float:
        return disk.all_with_cache / disk.one_with_cache if cache else disk.all / disk.one

    return [
        (
            f"disk, {count} similar envs: envs/",
            size_text(kiln.all),
            "one of them",
            size_text(kiln.one),
            f"{ratio(kiln, False):.2f}x",
            f"<= {DISK}x",
            verdict(ratio(kiln, False) <= DISK),
        ),
        (
            "  envs/ + uv cache",
            size_text(kiln.all_with_cache),
            "one of them + uv cache",
            size_text(kiln.one_with_cache),
            f"{ratio(kiln, True):.2f}x",
            f"<= {DISK}x",
            verdict(ratio(kiln, True) <= DISK),
        ),
        (
            f"  venv + pip, {count} envs",
            size_text(pip.all),
            "one of them",
            size_text(pip.one),
            f"{ratio(pip, False):.2f}x",
            "(info)",
            "",
        ),
        (
            "  venv + pip + pip cache",
            size_text(pip.all_with_cache),
            "one of them + pip cache",
            size_text(pip.one_with_cache),
            f"{ratio(pip, True):.2f}x",
            "(info)",
            "",
        ),
        (
            f"  Kiln vs venv + pip, {count} envs",
            size_text(kiln.all_with_cache),
            "venv + pip (+ caches)",
            size_text(pip.all_with_cache),
            f"{pip.all_with_cache / kiln.all_with_cache:.1f}x smaller",
            "(info)",
            "",
        ),
    ]


def print_table(sections: list[tuple[str, list[Row]]]) -> None:
    header: Row = ("measurement", "Kiln", "compared with", "its value", "ratio", "goal", "result")
    every = [header] + [row for _, rows in sections for row in rows]
    widths = [max(len(row[i]) for row in every) for i in range(len(header))]
    right = {1, 3, 4}

    def line(row: Row) -> str:
        cells = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    total = sum(widths) + 2 * (len(widths) - 1)
    print(line(header))
    for title, rows in sections:
        print(f"-- {title} ".ljust(total, "-"))
        for row in rows:
            print(line(row))


def print_phases(results: Results, sets: list[PackageSet]) -> None:
    print(
        "\nWhere Kiln's build time goes (median seconds; phases as `kiln env build` reports them):"
    )
    for pset in sets:
        for scenario in (
            "kiln cold",
            "kiln lock known, fresh cache",
            "kiln warm",
            "kiln warm, lock known",
        ):
            runs = results.phases[pset.label, scenario]
            if not runs:
                continue
            names = list(dict.fromkeys(name for run in runs for name in run))
            parts = [f"{name} {median([run.get(name, 0.0) for run in runs]):.2f}" for name in names]
            total = median(results.times[pset.label, scenario])
            print(f"  {pset.label}, {scenario} ({total:.2f} s): " + ", ".join(parts))
    print(
        "  (start-up: CLI import, workspace, finding the interpreter; verify: health check, "
        "marker, rename, build record, starting the bytecode job)"
    )
    print("\nPackage cache growth during one warm build (median; > 0 means it downloaded again):")
    for pset in sets:
        parts = [
            f"{scenario} {size_text(int(median([float(g) for g in growth])))}"
            for (label, scenario), growth in results.growth.items()
            if label == pset.label and growth
        ]
        filled = size_text(results.pip_cache.get(pset.label, 0))
        print(f"  {pset.label}: " + ", ".join(parts) + f"; pip's warm cache holds {filled}")
    print(
        "  (a pip cache near 0 MiB means the registry's responses carry no caching headers, "
        "so pip's 'warm' builds download everything again)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: tiny set, 3 envs")
    parser.add_argument("--repeat", type=int, help="rounds of builds (default 3; --quick 1)")
    parser.add_argument("--no-disk", action="store_true", help="leave out the disk rows")
    args = parser.parse_args()
    repeat = args.repeat or (1 if args.quick else 3)
    exec_repeat = 5 if args.quick else 15
    count = 3 if args.quick else 10
    sets = [TINY] if args.quick else [FULL, TINY]
    primary = sets[0]

    load_before = "/".join(f"{value:.1f}" for value in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="kiln-bench-build-") as folder:
        bench = Bench(Path(folder))
        log(f"interpreter for every tool: {bench.python}; uv: {bench.uv}")
        results = Results()
        for pset in sets:
            bench_builds(bench, pset, repeat, results)
        reads = bench_reads(bench, primary, exec_repeat)
        disks = (
            None
            if args.no_disk
            else (
                bench_disk_kiln(bench, primary, count),
                bench_disk_pip(bench, primary, count),
            )
        )

    sections = [("reading a built environment (warm)", read_rows(reads))]
    for pset in sets:
        title = f"{' '.join(pset.packages)} ({results.packages[pset.label]} packages installed)"
        sections.append((title, build_rows(results, pset)))
    extras = ", ".join(e.split("==")[0] for e in EXTRAS[:count])
    if disks is not None:
        title = f"disk: {' '.join(primary.packages)} + one of {extras}"
        sections.append((title, disk_rows(*disks, count)))
    load = "/".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"\nKiln builds vs raw uv and python -m venv + pip; medians of {repeat} round(s) of "
        f"builds, {exec_repeat} runs of each read command; {bench.python}; {os.cpu_count()} cores, load average "
        f"{load_before} at the start, {load} at the end\n"
    )
    print_table(sections)
    print_phases(results, sets)
    print(f"\ntotal run time: {time.perf_counter() - STARTED:.0f} s")


if __name__ == "__main__":
    try:
        main()
    except Failed as exc:
        sys.exit(f"benchmark failed: {exc}")
