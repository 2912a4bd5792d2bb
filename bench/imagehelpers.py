"""Plumbing for bench/images.py: a local package index of real wheels, the registry and base
image started the way kilntesting.images starts them, fresh engine stores, timed commands and
registry storage sizes. Everything lives under one temporary folder; servers are stopped by PID.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

STARTED = time.perf_counter()
# Goals from issue 10.
PUSH_GOAL = 1.2  # bytes pushed for a one-package change, over that package's wheel
PULL_GOAL = 3.0  # pulling at least this many times faster than building
WHEELS_CACHE = Path("/var/tmp/kiln-bench-wheels")  # pip download once, reused between runs


def log(text: str) -> None:
    print(f"[{time.perf_counter() - STARTED:6.0f} s] {text}", file=sys.stderr, flush=True)


class Failed(RuntimeError):
    pass


def tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def clean_env(root: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without settings that change what a tool does."""
    dropped = ("UV_", "PIP_", "KILN_", "VIRTUAL_ENV", "CONDA_", "PYTHON", "CONTAINERS_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    env["XDG_CACHE_HOME"] = str(root / "xdg-cache")
    env.update(extra)
    return env


def run(command: list[str], env: dict[str, str], cwd: Path | None = None) -> tuple[float, str]:
    """Wall-clock seconds and stdout of ``command``; Failed with its stderr when it fails."""
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise Failed(
            f"`{' '.join(command)}` exited with {done.returncode}:\n"
            f"{tail(done.stderr + done.stdout)}"
        )
    return seconds, done.stdout


def traced(command: list[str], env: dict[str, str]) -> tuple[float, str, list[tuple[float, str]]]:
    """Like ``run``, with each stderr line and the second it appeared (the build's phases)."""
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None and process.stderr is not None
    trace = [(time.perf_counter() - started, line.rstrip()) for line in process.stderr]
    output = process.stdout.read()  # small JSON: no deadlock
    code = process.wait()
    seconds = time.perf_counter() - started
    if code != 0:
        raise Failed(
            f"`{' '.join(command)}` exited with {code}:\n{tail(chr(10).join(t[1] for t in trace))}"
        )
    return seconds, output, trace


def download_wheels(requirements: list[str], folder: Path = WHEELS_CACHE) -> list[Path]:
    """``pip download --no-deps`` each requirement once (the machine-wide pip.conf off)."""
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    wheels = []
    for requirement in requirements:
        name, version = requirement.split("==")
        found = sorted(folder.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
        if not found:
            log(f"pip download {requirement}")
            subprocess.run(
                [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(folder),
                 requirement],
                env=env, check=True,
            )  # fmt: skip
            found = sorted(folder.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
        wheels.append(found[0])
    return wheels


def publish(index_root: Path, wheels: list[Path]) -> None:
    """Put real wheels where a PEP 503 directory-listing index serves them."""
    for wheel in wheels:
        project = wheel.name.split("-")[0].replace("_", "-").lower()
        folder = index_root / "simple" / project
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy2(wheel, folder / wheel.name)


@dataclass(frozen=True)
class Store:
    """A fresh containers storage, as kilntesting.images.engine_store makes one."""

    root: Path
    runroot: Path
    env: dict[str, str]


@contextmanager
def fresh_store(parent: Path, name: str) -> Iterator[Store]:
    from kilntesting.images import unmount_under

    root = parent / name
    root.mkdir(parents=True)
    runroot = Path(tempfile.mkdtemp(prefix="kbi-", dir="/tmp"))  # short: conmon's sockets
    conf = root / "storage.conf"
    conf.write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{root / "graph"}"\nrunroot = "{runroot}"\n'
    )
    try:
        yield Store(root, runroot, {"CONTAINERS_STORAGE_CONF": str(conf)})
    finally:
        for folder in (runroot, root):
            unmount_under(folder)
            shutil.rmtree(folder, ignore_errors=True)


def repository_blobs(registry_root: Path, repository: str) -> set[str]:
    """The blobs (layers, configs, manifests) linked into ``repository``: what a push into it
    sent, or mounted from another repository of the same registry."""
    folder = registry_root / "data" / "docker" / "registry" / "v2" / "repositories" / repository
    links = [
        *folder.glob("_layers/sha256/*/link"),
        *folder.glob("_manifests/revisions/sha256/*/link"),
    ]
    return {link.parent.name for link in links}


def blob_sizes(registry_root: Path, digests: set[str]) -> int:
    blobs = registry_root / "data" / "docker" / "registry" / "v2" / "blobs" / "sha256"
    return sum((blobs / digest[:2] / digest / "data").stat().st_size for digest in digests)


def phases(trace: list[tuple[float, str]], total: float, label: str) -> dict[str, float]:
    """Seconds from each ``kiln: LABEL: PHASE`` line to the next (start-up before the first)."""
    spent: dict[str, float] = {}
    previous, since = "start-up", 0.0
    marks = [
        (at, line.split(": ", 2)[2]) for at, line in trace if line.startswith(f"kiln: {label}: ")
    ]
    for at, name in [*marks, (total, "")]:
        spent[previous] = spent.get(previous, 0.0) + at - since
        previous, since = name, at
    return spent


def link_tree(source: Path, destination: Path) -> None:
    """A hard-linked copy of a uv cache: warm, and cheap to make for every build."""
    subprocess.run(["cp", "-al", str(source), str(destination)], check=True)


def image_size(reference: str, env: dict[str, str]) -> int:
    _, out = run(["podman", "image", "inspect", "--format", "{{.Size}}", reference], env)
    return int(out.strip())


def mib(value: float) -> str:
    return f"{value / 2**20:,.1f} MiB"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def verdict(met: bool) -> str:
    return "met" if met else "missed"


def table(
    results: dict[str, list[float]],
    digests: dict[str, set[str]],
    wheel: int,
    rounds: int,
    change: str,
) -> list[str]:
    """The markdown table of bench/images.py's medians, against the goals of issue 10."""
    m = {key: median(values) for key, values in results.items()}
    kiln_bytes, df_bytes = m["kiln rebuild bytes"], m["df rebuild bytes"]
    kiln_pull_speedup = m["kiln cold"] / m["kiln pull"]
    df_pull_speedup = m["df cold"] / m["df pull"]
    builds = 2 * rounds
    rows = [
        ("cold build + push (empty engine store, fresh Kiln cache, warm uv cache)",
         f"{m['kiln cold']:.2f} s", f"{m['df cold']:.2f} s (build alone {m['df cold build']:.2f} s)",
         f"{m['kiln cold'] / m['df cold']:.2f}x",
         f"no slower: {verdict(m['kiln cold'] <= m['df cold'])}"),
        ("warm build + push (base in the store)",
         f"{m['kiln warm']:.2f} s", f"{m['df warm']:.2f} s (build alone {m['df warm build']:.2f} s)",
         f"{m['kiln warm'] / m['df warm']:.2f}x", ""),
        (f"rebuild after {change} (+ push)",
         f"{m['kiln rebuild']:.2f} s", f"{m['df rebuild']:.2f} s",
         f"{m['kiln rebuild'] / m['df rebuild']:.2f}x", ""),
        (f"bytes the registry stored for it (the new wheel: {wheel / 1024:.0f} KiB)",
         f"{mib(kiln_bytes)} ({kiln_bytes / wheel:.0f}x the wheel)",
         f"{mib(df_bytes)} ({df_bytes / wheel:.0f}x the wheel)", "",
         f"< {PUSH_GOAL}x the wheel: {verdict(kiln_bytes < PUSH_GOAL * wheel)}"),
        ("pull on a second, empty store vs building there (cold)",
         f"{m['kiln pull']:.2f} s ({kiln_pull_speedup:.1f}x faster)",
         f"`podman pull` {m['df pull']:.2f} s ({df_pull_speedup:.1f}x faster)", "",
         f">= {PULL_GOAL:.0f}x faster: {verdict(kiln_pull_speedup >= PULL_GOAL)}"),
        ("image size (uncompressed, `podman image inspect`)",
         mib(m["kiln size"]), mib(m["df size"]), f"{m['kiln size'] / m['df size']:.2f}x", ""),
        (f"digests of the same lock built {builds} times",
         f"{len(digests['kiln'])} (pulled: {len(digests['kiln pulled'] - digests['kiln'])} other)",
         f"{len(digests['dockerfile'])}", "",
         f"Kiln identical: {verdict(len(digests['kiln']) == 1)}"),
    ]  # fmt: skip
    lines = ["| measurement | Kiln | uv's Dockerfile, `podman build` | ratio | goal |",
             "| --- | --- | --- | --- | --- |"]  # fmt: skip
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines
