"""``kill -9`` of a run's watcher (the ``kiln run submit`` process that follows a local run) at
random moments: before the run is recorded, while it starts, while its script runs. Then the
next ``kiln run show`` settles every run (Failed: its watcher stopped before it ended; never
left Running), and no process of the run (its script, the script's child) is left."""

from __future__ import annotations

import random
from pathlib import Path

from kilntesting.crash import Site, dead, kill_at, new_site, wait_until

SCRIPT = """\
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
with open(sys.argv[1], "w") as pids:
    pids.write(f"{os.getpid()} {child.pid}")
print("started", flush=True)
time.sleep(600)
"""
SETTLED = {"Failed", "Canceled"}  # how a run ends when its watcher was killed


def prepared_site(tmp_path: Path) -> Site:
    site = new_site(tmp_path)
    (site.root / "py.yaml").write_text('name: py\npython:\n  version: "3.11"\n')
    site.kiln("env", "register", "-f", "py.yaml")
    site.kiln("env", "build", "py")  # warm: the kills hit the run, not a build
    (site.root / "src").mkdir()
    (site.root / "src" / "sleepy.py").write_text(SCRIPT)
    return site


def test_kill_9_of_a_watcher_settles_the_run_and_leaves_no_process(
    tmp_path: Path, rng: random.Random, rounds: int
) -> None:
    site = prepared_site(tmp_path)
    pid_files = []
    settled: set[str] = set()
    for index in range(rounds):
        pids = tmp_path / f"pids{index}"
        pid_files.append(pids)
        watcher = site.start(
            "run", "submit", "--env", "py", "-d", "src", "-e", "crash", "sleepy.py", "--", str(pids)
        )  # fmt: skip
        assert kill_at(watcher, rng.uniform(0.0, 2.5)), "the watcher ended before its kill"
        for run in site.json("run", "list", "-e", "crash"):
            if run["id"] not in settled:  # each run is looked at once, by the round that made it
                shown = site.json("run", "show", run["id"])
                assert shown["status"] in SETTLED, (run["id"], shown["status"], shown.get("error"))
                settled.add(run["id"])
    started = [pids for pids in pid_files if pids.exists()]
    print(f"{len(started)} of {rounds} watchers were killed after their script started")
    for pids in pid_files:
        if pids.exists():  # the script had started before its watcher died
            for pid in map(int, pids.read_text().split()):
                assert wait_until(lambda pid=pid: dead(pid)), f"process {pid} of a run is left"
