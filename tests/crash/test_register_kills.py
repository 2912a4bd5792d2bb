"""``kill -9`` of a real ``kiln env register`` at random moments (issue 15: 143 kills by hand
lost and duplicated nothing; this keeps it so). Each round registers new content (a
definition with its own local wheel) and is killed somewhere between start-up and the commit.
Then the registry opens and passes SQLite's integrity check, the versions are 1..n without a
gap or a duplicate, every register that finished got its version, and every version's wheel
is in the artifact store."""

from __future__ import annotations

import random
import re
import sqlite3
from pathlib import Path

from kiln import catalog
from kiln.workspace import Workspace
from kilntesting.builds import make_wheel
from kilntesting.crash import Site, kill_at, new_site


def definition_folder(site: Site, index: int) -> Path:
    folder = site.root / f"src{index}"
    wheel = make_wheel(folder / "made", "demo", f"1.0.{index}")
    (folder / "wheels").mkdir(parents=True)
    (folder / "wheels" / wheel.name).write_bytes(wheel.read_bytes())
    (folder / "kiln.yaml").write_text(
        f'name: reg\npython:\n  version: "3.11"\n  pip:\n    packages: [./wheels/{wheel.name}]\n'
    )
    return folder


def test_kill_9_during_register_loses_and_duplicates_nothing(
    tmp_path: Path, rng: random.Random, rounds: int
) -> None:
    site = new_site(tmp_path)
    finished: dict[int, str] = {}
    for index in range(rounds):
        folder = definition_folder(site, index)
        proc = site.start("env", "register", "-d", str(folder))
        if not kill_at(proc, rng.uniform(0.0, 1.2)):
            assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
            finished[index] = "done"
    print(f"killed {rounds - len(finished)} of {rounds} registers in progress")
    check_registry(site, finished)


def check_registry(site: Site, finished: dict[int, str]) -> None:
    database = site.root / ".kiln" / "registry.db"
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    listed = site.json("env", "list", "--all-versions", "--no-curated")
    versions = [int(row["version"]) for row in listed if row["name"] == "reg"]
    assert sorted(versions) == list(range(1, len(versions) + 1)), versions
    assert len(versions) >= len(finished)
    workspace = Workspace(site.root)
    try:
        digests = set()
        for version in versions:
            record = catalog.get(workspace, "reg", str(version))
            (digest,) = record.definition.python.pip.file_digests.values()
            assert workspace.artifacts.lookup(digest) is not None, f"reg:{version} lost its wheel"
            digests.add(record.definition_digest)
        assert len(digests) == len(versions), "two versions hold the same content"
        wheels = {
            re.sub(r".*demo-(1\.0\.\d+)-.*", r"\1", p)
            for v in versions
            for p in catalog.get(workspace, "reg", str(v)).definition.python.pip.packages
        }
        assert {f"1.0.{i}" for i in finished} <= wheels, "a finished register lost its version"
    finally:
        workspace.close()
