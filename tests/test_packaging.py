"""The built wheel works outside the repository: migrations, curated definitions and the JSON
Schema travel with it (an editable install would hide a missing package-data file)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from kilntesting.cli import REPO


def test_the_wheel_installs_and_runs_from_anywhere(tmp_path: Path) -> None:
    from kiln.builders.uvtool import uv_binary

    uv = uv_binary()
    subprocess.run(
        [uv, "build", "--wheel", "-q", "-o", str(tmp_path / "dist"), str(REPO)],
        check=True,
        timeout=300,
    )
    wheel = next((tmp_path / "dist").glob("kiln-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "-q", str(venv)], check=True)
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(venv / "bin/python"), str(wheel)],
        check=True,
        timeout=300,
    )
    kiln = str(venv / "bin" / "kiln")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    work = tmp_path / "elsewhere"
    work.mkdir()
    subprocess.run([kiln, "init"], cwd=work, env=env, check=True, capture_output=True)
    listed = subprocess.run(
        [kiln, "env", "list", "--json"],
        cwd=work,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    assert {e["name"] for e in json.loads(listed.stdout)} >= {
        "Kiln-minimal-py311",
        "Kiln-inference-py311",
    }
    subprocess.run(
        [kiln, "env", "scaffold", "-n", "w", "-d", "e"],
        cwd=work,
        env=env,
        check=True,
        capture_output=True,
    )
    header = (work / "e" / "kiln.yaml").read_text().splitlines()[0]
    schema = Path(header.split("$schema=file://", 1)[1])
    assert schema.is_file() and str(venv) in str(schema)
    assert json.loads(schema.read_text())["title"] == "Kiln environment definition"
    # The public schemas of every --json output and the typing marker travel with the package.
    package = schema.parent
    assert (package / "py.typed").is_file()
    published = {p.name for p in (package / "schema" / "public").glob("*.schema.json")}
    assert {"run.schema.json", "environment-version-list.schema.json"} <= published
    # uv missing from an installation: a real uninstall, then a build says how to repair it.
    subprocess.run(
        [uv, "pip", "uninstall", "-q", "--python", str(venv / "bin/python"), "uv"], check=True
    )
    subprocess.run(
        [kiln, "env", "register", "-d", "e"], cwd=work, env=env, check=True, capture_output=True
    )
    broken = subprocess.run(
        [kiln, "env", "build", "w"],
        cwd=work,
        env={**env, "KILN_CACHE_DIR": str(tmp_path / "cache")},
        capture_output=True,
        text=True,
    )
    assert broken.returncode == 6, broken.stderr
    # Progress may come first (the interpreter is found without uv); the error is one line.
    assert broken.stderr.strip().splitlines()[-1] == (
        "kiln: error: uv is not installed; reinstall Kiln (`pip install kiln`), which ships it"
    )
    assert "Traceback" not in broken.stderr
    assert not list((tmp_path / "cache" / "envs").iterdir())
