"""``kill -9`` of a real ``kiln env build`` at random moments (resolving, installing, checking,
recording). Each round builds an environment of its own (one local wheel), so every kill hits a
build in progress. Then no half-built environment is in use: every cached environment that is
marked ready works, and the next build of the same environment succeeds and runs its wheel."""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

from kilntesting.builds import make_wheel
from kilntesting.crash import Site, kill_at, new_site

MARKER = ".kiln-ready"  # kiln.cache.MARKER: written last, after the health check


def register(site: Site, index: int) -> str:
    folder = site.root / f"src{index}"
    wheel = make_wheel(folder / "made", "demo", f"1.0.{index}")
    (folder / "wheels").mkdir(parents=True)
    (folder / "wheels" / wheel.name).write_bytes(wheel.read_bytes())
    (folder / "kiln.yaml").write_text(
        f'name: b{index}\npython:\n  version: "3.11"\n  pip:\n'
        f"    packages: [./wheels/{wheel.name}]\n"
    )
    site.kiln("env", "register", "-d", str(folder))
    return f"b{index}"


def ready_environments_work(site: Site) -> None:
    """A folder marked ready is complete: its interpreter runs and imports its wheel."""
    for folder in sorted((site.cache / "envs").glob("*")):
        if (folder / MARKER).is_file():
            check = [str(folder / "bin" / "python"), "-c", "import demo"]
            result = subprocess.run(check, capture_output=True, text=True, timeout=60)
            assert result.returncode == 0, f"{folder} is marked ready but: {result.stderr[-500:]}"


def test_kill_9_during_build_never_leaves_a_half_built_environment_in_use(
    tmp_path: Path, rng: random.Random, rounds: int
) -> None:
    site = new_site(tmp_path)
    killed = 0
    for index in range(rounds):
        name = register(site, index)
        killed += kill_at(site.start("env", "build", name), rng.uniform(0.0, 1.5))
        ready_environments_work(site)
        site.kiln("env", "build", name)
        ran = site.kiln("env", "exec", name, "--", "python", "-c", "import demo; print(demo.__version__)")  # fmt: skip
        assert ran.stdout.strip() == f"1.0.{index}"
    ready_environments_work(site)
    print(f"killed {killed} of {rounds} builds in progress")
