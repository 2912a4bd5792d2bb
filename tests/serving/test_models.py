"""Registered models: versions, content, lineage from runs."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from kiln.accounts import audit_entries, local_actor
from kiln.errors import InvalidRequest, NotFound
from kiln.sdk.runs import Experiment, ScriptRunConfig
from kiln.sdk.serving import Model
from kiln.serving import models
from kiln.workspace import Workspace
from kilntesting.runs import kiln_cli, write_script


def test_register_versions_download_and_list(project: Workspace, tmp_path: Path) -> None:
    weights = tmp_path / "model.pkl"
    weights.write_bytes(b"v1")
    first = Model.register(project, weights, "iris", tags={"kind": "logreg"}, description="first")
    weights.write_bytes(b"v2")
    second = Model.register(project, weights, "iris")
    folder = tmp_path / "bundle"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "w.bin").write_bytes(b"w")
    bundle = Model.register(project, folder, "bundle")
    assert (first.version, second.version, bundle.version) == (1, 2, 1)
    assert first.tags == {"kind": "logreg"} and first.description == "first"
    assert Model.get(project, "iris").version == 2  # the latest by default
    assert Path(Model(project, "iris", 1).download(tmp_path / "d1")).read_bytes() == b"v1"
    assert (Path(bundle.download(tmp_path / "d2")) / "sub" / "w.bin").read_bytes() == b"w"
    with pytest.raises(InvalidRequest, match="exist_ok"):
        Model(project, "iris", 1).download(tmp_path / "d1")
    assert [m.id for m in Model.list(project)] == ["bundle:1", "iris:1", "iris:2"]
    assert {m.created_by for m in models.list_models(project)} == {local_actor()}
    trail = audit_entries(project)
    registered = [(e["actor"], e["object"]) for e in trail if e["action"] == "model.register"]
    assert registered == [
        (local_actor(), m) for m in ("bundle:1", "iris:2", "iris:1")
    ]  # newest first
    with pytest.raises(NotFound, match="no model iris:9"):
        Model.get(project, "iris", 9)
    with pytest.raises(InvalidRequest, match="does not exist"):
        Model.register(project, tmp_path / "none.pkl", "x")
    with pytest.raises(InvalidRequest, match="`model_name`"):
        Model.register(project, weights, "bad name")


def test_concurrent_registrations_get_distinct_versions(
    workspace: Workspace, tmp_path: Path
) -> None:
    """On SQLite and on PostgreSQL."""
    project = workspace
    weights = tmp_path / "m.bin"
    weights.write_bytes(b"m")
    versions: list[int] = []

    def register() -> None:
        ws = Workspace(project.path)
        versions.append(models.register(ws, weights, "racy").version)
        ws.close()

    threads = [threading.Thread(target=register) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(versions) == [1, 2, 3, 4, 5, 6]


def test_a_model_from_a_run_keeps_its_lineage(
    project: Workspace, cache_dir: Path, tmp_path: Path
) -> None:
    write_script(
        tmp_path / "src",
        "train.py",
        "import os\nos.makedirs('outputs', exist_ok=True)\nopen('outputs/model.pkl','wb').write(b'trained')\n",
    )
    run = Experiment(project, "lineage").submit(
        ScriptRunConfig(source_directory=tmp_path / "src", script="train.py", environment="py")
    )
    run.wait_for_completion()
    model = run.register_model("trained", "outputs/model.pkl")
    info = model.serialize()
    assert info["run_id"] == run.id and info["environment"] == "py:1"
    assert Path(model.download(tmp_path / "dl")).read_bytes() == b"trained"
    whole = run.register_model("all-outputs")  # the default: the outputs folder itself
    assert whole.serialize()["file_name"] == "outputs"
    assert (Path(whole.download(tmp_path / "dl2")) / "model.pkl").read_bytes() == b"trained"
    with pytest.raises(InvalidRequest, match=r"no output 'outputs/none\.pkl'"):
        run.register_model("x", "outputs/none.pkl")
    result = kiln_cli(
        project,
        cache_dir,
        "model",
        "register",
        "-n",
        "cli",
        "-p",
        "outputs/model.pkl",
        "--run",
        run.id,
        "--json",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["run_id"] == run.id
    shown = json.loads(kiln_cli(project, cache_dir, "model", "show", "cli:1", "--json").stdout)
    assert shown["environment"] == "py:1"
