"""Warm builds only, two Kilns side by side: ``kiln env build`` from a stored lock with warm
package caches, for this tree's Kiln and another source tree's (``--before``, e.g. main's
worktree), interleaved round by round with ``uv venv && uv pip sync`` of the same lock.

Uses bench/build.py's functions, so the conditions are those of its "from a stored lock, warm
package cache" row: the same interpreter, registry and uv cache for every tool, and each build's
background bytecode job waited for before the next measurement. Prints the medians, the phases
Kiln reported and the load average.

Run: ``python bench/warm_builds.py --before /work/main/src [--repeat 3] [--tiny]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import build as b


def kiln_script(root: Path, label: str, source: Path) -> str:
    """A ``kiln`` script importing Kiln from ``source`` (a tree's ``src/``)."""
    script = root / f"kiln-{label}"
    script.write_text(
        f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(source)!r})\n"
        "from kiln.cli.main import main\nsys.exit(main())\n"
    )
    script.chmod(0o755)
    return str(script)


def load() -> str:
    return "/".join(f"{value:.1f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", type=Path, required=True, help="the other tree's src/")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tiny", action="store_true", help="six+attrs instead of numpy+...")
    args = parser.parse_args()
    pset = b.TINY if args.tiny else b.FULL
    this = Path(b.__file__).resolve().parents[1] / "src"
    with tempfile.TemporaryDirectory(prefix="kiln-warm-bench-") as folder:
        bench = b.Bench(Path(folder))
        kilns = {
            "before": kiln_script(bench.root, "before", args.before.resolve()),
            "after": kiln_script(bench.root, "after", this),
        }
        started_load = load()
        workspace = bench.workspace({"bench": pset.packages})
        caches = bench.fresh("warm-kiln-caches")
        warm_uv = bench.fresh("warm-uv")
        bench.kiln = kilns["after"]
        first = bench.kiln_build("bench", workspace, caches)  # resolves, stores the lock
        b.wait_for_jobs(caches)
        b.rmtree(caches / "envs")
        requirements = bench.export_lock("bench", workspace)
        _, venv = bench.uv_sync(requirements, warm_uv)  # fills uv's own cache
        b.rmtree(venv)
        times: dict[str, list[float]] = defaultdict(list)
        phases: dict[str, list[dict[str, float]]] = defaultdict(list)
        for attempt in range(args.repeat + 1):  # one warm-up round, then measured
            for label, script in kilns.items():
                bench.kiln = script
                cache = bench.fresh("kiln-cache")
                for name in b.KILN_PACKAGE_CACHES:
                    if (caches / name).exists():
                        b.move(caches / name, cache / name)
                run = bench.kiln_build("bench", workspace, cache)
                b.wait_for_jobs(cache)
                for name in b.KILN_PACKAGE_CACHES:
                    if (cache / name).exists():
                        b.move(cache / name, caches / name)
                b.rmtree(cache)
                if attempt:
                    times[label].append(run.seconds)
                    phases[label].append(run.phases)
            seconds, venv = bench.uv_sync(requirements, warm_uv)
            b.rmtree(venv)
            if attempt:
                times["uv sync"].append(seconds)
            b.log(
                f"round {attempt}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in times.items() if v)
            )
        print(
            f"{pset.label}, {first.packages} packages, from a stored lock, warm caches; "
            f"{args.repeat} rounds; {os.cpu_count()} CPUs; load {started_load} -> {load()}"
        )
        sync = statistics.median(times["uv sync"])
        print(f"uv venv && uv pip sync: {sync:.3f} s")
        for label in kilns:
            seconds = statistics.median(times[label])
            names = list(dict.fromkeys(n for p in phases[label] for n in p))
            split = ", ".join(
                f"{n} {statistics.median([p.get(n, 0.0) for p in phases[label]]):.3f}"
                for n in names
            )
            print(f"kiln {label}: {seconds:.3f} s ({seconds / sync:.2f}x uv sync; {split})")


if __name__ == "__main__":
    main()
