"""``kiln deploy create --health-port P``: a second port answers liveness probes, as
azmlinfsrv's ``--health_port`` does, for process and container deployments alike; it survives
an update, is shown with the deployment, and a bad or busy port is refused before anything is
recorded."""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path

import pytest

from kiln.workspace import Workspace
from kilntesting.images import BaseImage, free_port
from kilntesting.runs import kiln_cli, write_script
from kilntesting.serving import post

SCORE = """
    import os
    def init():
        global model
        model = open(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.txt")).read()
    def run(raw_data):
        return {"model": model}
"""


def _liveness(uri: str) -> tuple[int, str]:
    with urllib.request.urlopen(uri, timeout=10) as answer:
        return answer.status, answer.read().decode()


def _model(ws: Workspace, cache: Path, folder: Path, text: str) -> None:
    folder.mkdir()
    (folder / "model.txt").write_text(text)
    made = kiln_cli(ws, cache, "model", "register", "-n", "m", "-p", str(folder / "model.txt"))
    assert made.returncode == 0, made.stderr


@pytest.mark.parametrize("kind", ["process", "container"])
def test_a_health_port_answers_liveness_probes_and_survives_an_update(
    kind: str,
    project: Workspace,
    tmp_path: Path,
    cache_dir: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    extra = []
    if kind == "container":
        base: BaseImage = request.getfixturevalue("base_image")
        monkeypatch.setenv("KILN_BASE_IMAGE", base.local_ref)
        extra = ["--container"]
    write_script(tmp_path / "serve", "score.py", SCORE)
    _model(project, cache_dir, tmp_path / "one", "one")
    health = free_port()
    create = ["deploy", "create", "-n", "probed", "--model", "m:1", "--entry-script", "score.py"]
    create += ["-d", str(tmp_path / "serve"), "--env", "py", "--workers", "2", *extra]
    made = kiln_cli(
        project, cache_dir, *create, "--health-port", str(health), "--json", timeout=600
    )
    assert made.returncode == 0, (
        made.stderr + kiln_cli(project, cache_dir, "deploy", "logs", "probed").stdout
    )
    info = json.loads(made.stdout)
    try:
        assert info["liveness_uri"] == f"http://127.0.0.1:{health}/"
        assert _liveness(info["liveness_uri"]) == _liveness(
            info["scoring_uri"].removesuffix("score")
        )
        _model(project, cache_dir, tmp_path / "two", "two")
        updated = kiln_cli(
            project, cache_dir, "deploy", "update", "probed", "--model", "m:2", "--json"
        )
        assert updated.returncode == 0, updated.stderr
        assert json.loads(updated.stdout)["liveness_uri"] == info["liveness_uri"]
        assert json.loads(post(info["scoring_uri"])[1])["model"] == "two"
        assert _liveness(info["liveness_uri"])[0] == 200
        shown = kiln_cli(project, cache_dir, "deploy", "show", "probed").stdout
        assert "liveness uri" in shown and info["liveness_uri"] in shown
    finally:
        deleted = kiln_cli(project, cache_dir, "deploy", "delete", "probed")
        assert deleted.returncode == 0, deleted.stderr
    with pytest.raises(OSError):
        _liveness(info["liveness_uri"])


def test_a_bad_or_busy_health_port_is_refused_and_nothing_is_recorded(
    project: Workspace, tmp_path: Path, cache_dir: Path
) -> None:
    write_script(tmp_path / "serve", "score.py", SCORE)
    _model(project, cache_dir, tmp_path / "one", "one")
    create = ["deploy", "create", "-n", "bad", "--model", "m:1", "--entry-script", "score.py"]
    create += ["-d", str(tmp_path / "serve"), "--env", "py", "--port", str(free_port())]
    with socket.create_server(("127.0.0.1", 0)) as busy:
        taken = busy.getsockname()[1]
        for port, says in (
            ("0", "must be a port number"),
            (create[-1], "other than the scoring port"),
            (str(taken), "is in use"),
        ):
            refused = kiln_cli(project, cache_dir, *create, "--health-port", port)
            assert (
                refused.returncode != 0
                and "`health_port`" in refused.stderr
                and says in refused.stderr
            )
            assert len(refused.stderr.strip().splitlines()) == 1
    listed = kiln_cli(project, cache_dir, "deploy", "list", "--json")
    assert json.loads(listed.stdout) == []
