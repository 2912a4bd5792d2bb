"""A plain-text password handed to Kiln never lands anywhere Kiln writes or prints."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from conftest import REPO, run_kiln

SECRET = "hunter2-plaintext"  # what azureml-core wrote into the fixture's azureml_environment.json


def _every_byte_under(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def test_registry_password_from_azure_v1_never_lands(tmp_path: Path) -> None:
    source = tmp_path / "from-azure"
    shutil.copytree(REPO / "tests/fixtures/azureml_v1/registry_password", source)
    assert SECRET in (source / "azureml_environment.json").read_text()
    run_kiln("init", str(tmp_path / "ws"))
    cwd = tmp_path / "ws"
    outputs = [run_kiln("env", "register", "-d", str(source), cwd=cwd)]
    outputs.append(run_kiln("env", "show", "registry-password", "--json", cwd=cwd))
    outputs.append(run_kiln("env", "show", "registry-password", cwd=cwd))
    outputs.append(run_kiln("env", "list", "--json", cwd=cwd))
    outputs.append(run_kiln("env", "hash", "-d", str(source), "--json", cwd=cwd))
    for fmt in ("kiln", "azure-v1", "azure-v2"):
        outputs.append(
            run_kiln(
                "env", "download", "registry-password", "-d", f"out-{fmt}", "--format", fmt, cwd=cwd
            )
        )
    warning = outputs[0].stderr
    assert "password" in warning and "${" in warning  # the user is told how to supply it
    shown = json.loads(outputs[1].stdout)
    assert shown["definition"]["docker"]["base_image_registry"] == {
        "address": "private.example",
        "username": "bob",
    }
    for result in outputs:
        assert SECRET not in result.stdout + result.stderr
    assert SECRET.encode() not in _every_byte_under(cwd)
