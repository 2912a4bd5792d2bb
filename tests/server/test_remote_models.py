"""Models with KILN_WORKSPACE=http://HOST:PORT: registered on one machine (content in the
server's artifact store, the record on the server with who registered it and an audit row),
listed, shown and downloaded on another, every file checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kiln.workspace import Workspace
from kilntesting.cli import run_kiln
from kilntesting.runs import write_script
from kilntesting.teamserver import Team


def _folder_model(folder: Path) -> Path:
    (folder / "sub").mkdir(parents=True)
    (folder / "weights.bin").write_bytes(bytes(range(256)) * 1024)
    (folder / "sub" / "vocab.txt").write_text("a b c")
    (folder / "score.sh").write_text("#!/bin/sh\n")
    (folder / "score.sh").chmod(0o755)
    return folder


def _tree(folder: Path) -> dict[str, tuple[bytes, bool]]:
    return {
        p.relative_to(folder).as_posix(): (p.read_bytes(), bool(p.stat().st_mode & 0o100))
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_a_model_registered_on_one_machine_is_downloaded_on_another(
    team: Team, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ann = team.machine(team.token("ann", "contributor"), tmp_path / "a", tmp_path / "cache")
    model = _folder_model(tmp_path / "model")
    (tmp_path / "single.pkl").write_bytes(b"pickled weights")
    reg = ["model", "register", "--json", "-n"]
    made = json.loads(run_kiln(*reg, "rm-folder", "-p", str(model), env=ann).stdout)
    assert (made["id"], made["kind"], made["created_by"]) == ("rm-folder:1", "folder", "ann")
    assert made["size"] == 256 * 1024 + 5 + 10
    single = run_kiln(*reg, "rm-file", "-p", str(tmp_path / "single.pkl"), "--tag", "k=v", env=ann)
    assert json.loads(single.stdout)["tags"] == {"k": "v"}
    # Machine B: a reader with a data folder of its own.
    rob = team.machine(team.token("rob", "reader"), tmp_path / "b", tmp_path / "cache")
    listed = json.loads(run_kiln("model", "list", "--json", env=rob).stdout)
    assert {m["id"] for m in listed} >= {"rm-folder:1", "rm-file:1"}
    shown = json.loads(run_kiln("model", "show", "rm-folder", "--json", env=rob).stdout)
    assert shown == made
    out = tmp_path / "out"
    run_kiln("model", "download", "rm-folder:1", "-d", str(out), env=rob)
    run_kiln("model", "download", "rm-file", "-d", str(out), env=rob)
    assert _tree(out / "model") == _tree(model)
    assert (out / "single.pkl").read_bytes() == b"pickled weights"
    # A reader registers nothing; the audit names who registered what.
    refused = run_kiln(*reg, "rm-file", "-p", str(tmp_path / "single.pkl"), env=rob, check=False)
    assert (refused.returncode, refused.stderr) == (
        4,
        "kiln: error: rob is a reader; writes need a contributor or admin token\n",
    )
    versions = json.loads(run_kiln("model", "list", "-n", "rm-file", "--json", env=rob).stdout)
    assert [m["version"] for m in versions] == [1]
    audit = team.call("GET", "/api/v1/audit", team.admin_token).json()
    assert {("ann", "model.register", "rm-folder:1"), ("ann", "model.register", "rm-file:1")} <= {
        (e["actor"], e["action"], e["object"]) for e in audit
    }
    # The SDK on machine B, in this process.
    for name, value in {**rob, "KILN_DATA_DIR": str(tmp_path / "b-sdk")}.items():
        monkeypatch.setenv(name, value)
    from kiln.sdk.serving import Model

    found = Model.get(Workspace(team.url), "rm-folder")
    assert found.id == "rm-folder:1"
    assert _tree(Path(found.download(tmp_path / "sdk"))) == _tree(model)


def test_a_model_from_a_runs_outputs_and_a_tampered_blob(
    team: Team, tmp_path: Path, shared_cache: Path
) -> None:
    ann = team.machine(team.token("ann", "contributor"), tmp_path / "a", shared_cache)
    write_script(
        tmp_path / "src",
        "train.py",
        "import os\nos.makedirs('outputs', exist_ok=True)\n"
        "open('outputs/clf.bin', 'wb').write(b'trained on A')\n",
    )
    submit = ["run", "submit", "-d", str(tmp_path / "src"), "-e", "rm-run", "--json", "train.py"]
    run_id = json.loads(run_kiln(*submit, env=ann).stdout)["id"]
    # Registered from the run on machine B: its outputs come from the store, lineage kept.
    ann_b = {**ann, "KILN_DATA_DIR": str(tmp_path / "b")}
    reg = ["model", "register", "-n", "rm-run", "--run", run_id, "-p", "outputs/clf.bin", "--json"]
    made = json.loads(run_kiln(*reg, env=ann_b).stdout)
    assert (made["run_id"], made["kind"], made["size"]) == (run_id, "file", 12)
    store = Workspace(team.root / ("server" if team.database_url else "ws")).root / "artifacts"
    blob = store / "sha256" / made["digest"][:2] / made["digest"]
    blob.write_bytes(b"trained on X")  # behind the server's back
    c = {**ann, "KILN_DATA_DIR": str(tmp_path / "c")}
    refused = run_kiln(
        "model", "download", "rm-run", "-d", str(tmp_path / "out"), env=c, check=False
    )
    assert refused.returncode == 2
    assert f"does not match sha256 {made['digest']}" in refused.stderr
    assert not (tmp_path / "out" / "clf.bin").exists()


def test_a_deployment_of_a_model_the_server_lacks_is_refused_in_one_line(
    team: Team, tmp_path: Path
) -> None:
    ann = team.machine(team.token("ann", "contributor"), tmp_path / "a", tmp_path / "cache")
    write_script(tmp_path / "code", "score.py", "def init(): pass\ndef run(data): return data\n")
    create = ["deploy", "create", "-n", "rm-svc", "--model", "rm-x:1", "--entry-script", "score.py"]
    refused = run_kiln(*create, "-d", str(tmp_path / "code"), env=ann, check=False)
    assert refused.returncode == 3 and "rm-x" in refused.stderr
    assert refused.stderr.endswith("`kiln model list`\n") and refused.stderr.count("\n") == 1
    listed = json.loads(run_kiln("deploy", "list", "--json", env=ann).stdout)
    assert "rm-svc" not in [d["name"] for d in listed]  # nothing was recorded
