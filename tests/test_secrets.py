"""A plain-text password handed to Kiln never lands anywhere Kiln writes or prints."""

from __future__ import annotations

import json
import shutil
from base64 import b64decode
from pathlib import Path

from kiln.secrets import basic_authorization, credential_references
from kilntesting.cli import REPO, run_kiln

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


def test_redaction_of_urls() -> None:
    from kiln.secrets import redact

    assert (
        redact("see https://bob:hunter2@idx.example/simple now")
        == "see https://bob:<redacted>@idx.example/simple now"
    )
    assert (
        redact("git+https://ghp_abc123@github.example/x.git")
        == "git+https://<redacted>@github.example/x.git"
    )
    assert redact("https://bob:${PW}@idx.example/simple") == "https://bob:${PW}@idx.example/simple"
    assert redact("https://${TOKEN}@idx.example/simple") == "https://${TOKEN}@idx.example/simple"
    assert (
        redact("postgresql+psycopg://kiln:pa$word@db/kiln")
        == "postgresql+psycopg://kiln:<redacted>@db/kiln"
    )


def test_error_messages_never_echo_a_password() -> None:
    from kiln.environment.definition import EnvironmentDefinition
    from kiln.environment.validation import validate_definition
    from kiln.errors import InvalidDefinition

    for packages in (
        ["--extra-index-url https://u:hunter2@h.example/simple"],
        ["x @ https://tok3n@h.example/x.whl"],
    ):
        try:
            validate_definition({"name": "x", "python": {"pip": {"packages": packages}}})
        except InvalidDefinition as exc:
            assert "hunter2" not in str(exc) and "tok3n" not in str(exc), str(exc)
        else:
            raise AssertionError(f"{packages} was accepted")
    assert EnvironmentDefinition(
        name="ok", python={"pip": {"packages": ["x @ https://${TOKEN}@h.example/x.whl"]}}
    )


def test_one_rule_for_plain_secret_variables() -> None:
    from kiln.secrets import plain_secret_variable

    refusal = plain_secret_variable("API_TOKEN", "tok-123456")
    assert refusal is not None and "tok-123456" not in refusal and "${API_TOKEN}" in refusal
    for name, value in (("API_TOKEN", "${VAULT_TOKEN}"), ("API_TOKEN", ""), ("MODE", "fast")):
        assert plain_secret_variable(name, value) is None


def test_basic_authorization_expands_the_credentials_of_a_url_and_nothing_else() -> None:
    values = {"USER_VAR": "carol", "PASS_VAR": "p:ss@w0rd-long"}
    header = basic_authorization("ray://${USER_VAR}:${PASS_VAR}@head:8265", values)
    assert (
        header is not None and b64decode(header.removeprefix("Basic ")) == b"carol:p:ss@w0rd-long"
    )
    lone = basic_authorization("https://${PASS_VAR}@h.example/c", values)  # a token: no password
    assert lone is not None and b64decode(lone.removeprefix("Basic ")) == b"p:ss@w0rd-long:"
    encoded = basic_authorization("https://carol%40corp:${PASS_VAR}@h.example/c", values)
    assert encoded is not None and b64decode(encoded.removeprefix("Basic ")).startswith(
        b"carol@corp:"
    )
    assert basic_authorization("https://h.example/t/${PASS_VAR}/c", values) is None
    assert credential_references("https://${USER_VAR}:${PASS_VAR}@h/t/${OTHER}/c") == [
        "USER_VAR",
        "PASS_VAR",
    ]
    assert credential_references("head:8265") == []
