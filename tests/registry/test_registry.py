"""Registry behaviour, identical on the embedded SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from kiln import catalog
from kiln.environment.definition import EnvironmentDefinition
from kiln.errors import Conflict, InvalidRequest, NotFound, ReadOnly
from kiln.workspace import Workspace


def define(name: str = "train", *pip: str, **fields: object) -> EnvironmentDefinition:
    python = {"version": "3.11", "pip": {"packages": list(pip or ["numpy==2.4.6"])}}
    return EnvironmentDefinition.model_validate({"name": name, "python": python, **fields})


def test_same_content_keeps_its_version_and_changes_make_the_next(workspace: Workspace) -> None:
    first = catalog.register(workspace, define())
    again = catalog.register(workspace, define(description="new words", tags={"team": "a"}))
    changed = catalog.register(workspace, define("train", "numpy==2.4.6", "pandas==3.1.1"))
    assert (first.created, first.record.version) == (True, "1")
    assert (again.created, again.record.version) == (False, "1")
    assert (changed.created, changed.record.version) == (True, "2")
    assert catalog.get(workspace, "train").version == "2"


def test_env_var_change_is_a_new_version_with_the_same_build(workspace: Workspace) -> None:
    one = catalog.register(workspace, define()).record
    two = catalog.register(workspace, define(environment_variables={"OMP_NUM_THREADS": "1"})).record
    assert two.version == "2"
    assert two.build_hash == one.build_hash
    assert two.definition_digest != one.definition_digest
    assert catalog.same_build(workspace, two) == ["train:1"]


def test_renamed_environment_shares_the_build(workspace: Workspace) -> None:
    catalog.register(workspace, define("a"))
    other = catalog.register(workspace, define("b")).record
    assert catalog.same_build(workspace, other) == ["a:1"]


def test_explicit_versions(workspace: Workspace) -> None:
    v2 = catalog.register(workspace, define(version="2.0")).record
    assert v2.version == "2.0"
    assert catalog.register(workspace, define(version="2.0")).created is False
    with pytest.raises(Conflict, match=r"train:2.0 already exists with other content"):
        catalog.register(workspace, define("train", "pandas==3.1.1", version="2.0"))
    nxt = catalog.register(workspace, define("train", "scipy==1.17.1")).record
    assert nxt.version == "1"  # free-form versions do not take part in integer numbering
    assert catalog.get(workspace, "train").version == "1"  # latest = most recently registered
    assert catalog.get(workspace, "train", "2.0").definition.python.pip.packages == ["numpy==2.4.6"]


def test_an_explicit_new_version_of_content_already_held_names_that_version(
    workspace: Workspace,
) -> None:
    """Issue 15, item 11: same content = same version, also when a version is given."""
    first = catalog.register(workspace, define(version="1e5")).record
    assert catalog.register(workspace, define(version="1e5")).created is False
    assert catalog.register(workspace, define()).record.version == "1e5"
    with pytest.raises(InvalidRequest) as caught:
        catalog.register(workspace, define(version="0"))
    assert str(caught.value) == (
        "train:1e5 already holds this content, so it cannot also be train:0; use train:1e5, "
        "or change the definition first"
    )
    assert caught.value.exit_code == 2
    rows = catalog.list_records(workspace, name="train", all_versions=True)
    assert [r.version for r in rows] == [first.version]


def test_get_unknown_names_the_environment(workspace: Workspace) -> None:
    with pytest.raises(NotFound, match="no environment nope:3"):
        catalog.get(workspace, "nope", "3")


def test_archive_hides_from_lists_but_get_by_version_works(workspace: Workspace) -> None:
    catalog.register(workspace, define())
    catalog.register(workspace, define("train", "pandas==3.1.1"))
    catalog.set_archived(workspace, "train", "2", archived=True)
    assert catalog.get(workspace, "train").version == "1"
    assert catalog.get(workspace, "train", "2").archived is True
    listed = catalog.list_records(workspace, include_curated=False)
    assert [r.reference for r in listed] == ["train:1"]
    everything = catalog.list_records(
        workspace, include_curated=False, all_versions=True, include_archived=True
    )
    assert [r.reference for r in everything] == ["train:1", "train:2"]
    catalog.set_archived(workspace, "train", None, archived=True)
    assert catalog.list_records(workspace, include_curated=False) == []
    catalog.set_archived(workspace, "train", "2", archived=False)
    assert catalog.get(workspace, "train").version == "2"


def test_list_latest_all_versions_search_and_tags(workspace: Workspace) -> None:
    catalog.register(workspace, define("vision-train", tags={"team": "cv"}))
    catalog.register(
        workspace, define("vision-train", "torch==2.13.0", tags={"team": "cv", "gpu": "no"})
    )
    catalog.register(workspace, define("nlp-train", tags={"team": "nlp"}))
    latest = catalog.list_records(workspace, include_curated=False)
    assert [r.reference for r in latest] == ["nlp-train:1", "vision-train:2"]
    every = catalog.list_records(workspace, include_curated=False, all_versions=True)
    assert [r.reference for r in every] == ["nlp-train:1", "vision-train:1", "vision-train:2"]
    assert [r.name for r in catalog.list_records(workspace, name_contains="VISION")] == [
        "vision-train"
    ]
    assert [r.reference for r in catalog.list_records(workspace, tags={"team": "nlp"})] == [
        "nlp-train:1"
    ]
    assert [r.reference for r in catalog.list_records(workspace, tags={"gpu": None})] == [
        "vision-train:2"
    ]
    assert catalog.list_records(workspace, name_contains="%") == []  # LIKE wildcards are literal


def test_tags_can_be_changed_and_removed(workspace: Workspace) -> None:
    catalog.register(workspace, define(tags={"stage": "dev", "owner": "ana"}))
    record = catalog.set_tags(workspace, "train", None, add={"stage": "prod"}, remove=["owner"])
    assert record.tags == {"stage": "prod"}
    assert catalog.get(workspace, "train", "1").tags == {"stage": "prod"}


def test_curated_environments_are_listed_and_read_only(workspace: Workspace) -> None:
    names = [r.name for r in catalog.list_records(workspace) if r.curated]
    assert {
        "Kiln-minimal-py311",
        "Kiln-sklearn-pandas-py311",
        "Kiln-pytorch-cpu-py311",
        "Kiln-inference-py311",
    } <= set(names)
    record = catalog.get(workspace, "Kiln-sklearn-pandas-py311")
    assert record.curated and record.version == "1"
    with pytest.raises(ReadOnly, match=r"reserved prefix 'Kiln-'.*register it as 'mine'"):
        catalog.register(workspace, define("Kiln-mine"))
    with pytest.raises(ReadOnly):
        catalog.set_archived(workspace, "Kiln-minimal-py311", None, archived=True)


def test_definition_round_trips_through_the_database(workspace: Workspace) -> None:
    original = EnvironmentDefinition.model_validate(
        {
            "name": "full",
            "description": "d",
            "tags": {"k": "v"},
            "python": {
                "version": "3.10",
                "conda": {"channels": ["conda-forge"], "packages": ["numpy=1.26", "pip"]},
                "pip": {
                    "packages": ["requests[socks]>=2; python_version>'3.8'"],
                    "index_url": "https://idx.example/simple",
                    "pre": True,
                },
            },
            "environment_variables": {"A": "1"},
            "docker": {
                "base_image": "repo/img:1",
                "base_image_registry": {"address": "repo", "username": "u", "password": "${PW}"},
                "platform": {"os": "linux", "architecture": "arm64"},
            },
            "spark": {
                "repositories": ["https://m.example"],
                "packages": [{"group": "g", "artifact": "a", "version": "1"}],
                "precache_packages": False,
            },
            "inferencing_stack_version": "latest",
        }
    )
    record = catalog.register(workspace, original).record
    fetched = catalog.get(workspace, "full", record.version).definition
    assert fetched == original.model_copy(update={"version": "1"})


RACE = textwrap.dedent(
    """
    import sys, time, json
    from pathlib import Path
    from kiln.workspace import Workspace
    from kiln import catalog
    from kiln.environment.definition import EnvironmentDefinition
    folder, index = Path(sys.argv[1]), int(sys.argv[2])
    ws = Workspace(folder / "project")
    ws.engine  # connect before the start signal, so all 8 really start together
    (folder / f"ready-{index}").touch()
    while not (folder / "go").exists():
        time.sleep(0.005)
    d = EnvironmentDefinition.model_validate({"name": "race", "python": {"pip": {"packages": [f"pkg{index}==1.0"]}}})
    print(json.dumps(catalog.register(ws, d).record.summary()))
    """
)


def test_eight_processes_registering_one_name_get_unique_consecutive_versions(
    workspace: Workspace, tmp_path: Path
) -> None:
    env = {**os.environ}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, str(tmp_path), str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(8)
    ]
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("ready-*"))) < 8 and time.monotonic() < deadline:
        time.sleep(0.01)
    (tmp_path / "go").touch()
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        results.append(json.loads(out))
    versions = sorted(int(r["version"]) for r in results)
    assert versions == list(range(1, 9))
    assert len({r["definition_digest"] for r in results}) == 8
    stored = catalog.list_records(workspace, name="race", all_versions=True, include_curated=False)
    assert sorted(int(r.version) for r in stored) == list(range(1, 9))
