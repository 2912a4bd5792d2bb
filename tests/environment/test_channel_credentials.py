"""A conda channel URL is treated like an index URL (issue 15, case 3): a plain-text password
is refused wherever a definition is read, with the ``${VAR}`` fix; a ``${VAR}`` reference is
kept as written, never expanded, and never part of a digest."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from kiln import CondaDependencies
from kiln.environment.canonical import build_hash, definition_digest
from kiln.environment.definition import EnvironmentDefinition
from kiln.environment.diff import diff
from kiln.environment.validation import assign, validate_definition
from kiln.errors import InvalidDefinition
from kiln.formats import azure_v1, azure_v2, conda_env, kiln_yaml
from kilntesting.cli import run_kiln

PASSWORD = "Sw0rdfish-plain"
PLAIN = f"https://carol:{PASSWORD}@conda.example/channel"
FIX = "https://carol:${ENV_VAR}@conda.example/channel"
CONDA = {"name": "chan", "channels": [PLAIN], "dependencies": ["python=3.11", "numpy=1.26.4"]}


def _kiln_yaml(folder: Path) -> Path:
    data = {"name": "chan", "python": {"conda": {"channels": [PLAIN]}}}
    (folder / "kiln.yaml").write_text(yaml.safe_dump(data))
    return folder / "kiln.yaml"


def _conda_env(folder: Path) -> Path:
    (folder / "environment.yml").write_text(yaml.safe_dump(CONDA))
    return folder / "environment.yml"


def _azure_v1(folder: Path) -> Path:
    data = {"name": "chan", "python": {"condaDependencies": CONDA}}
    (folder / azure_v1.DEFINITION_FILE).write_text(json.dumps(data))
    return folder


def _azure_v2(folder: Path) -> Path:
    (folder / "environment.yaml").write_text(yaml.safe_dump({"name": "chan", "conda_file": CONDA}))
    return folder / "environment.yaml"


LOADERS: dict[str, tuple[Callable[[Path], Path], Callable[[Path], object]]] = {
    "kiln": (_kiln_yaml, kiln_yaml.load),
    "conda": (_conda_env, conda_env.load),
    "azure-v1": (_azure_v1, azure_v1.load),
    "azure-v2": (_azure_v2, azure_v2.load),
}


def _check_refusal(message: str) -> None:
    assert PASSWORD not in message and "\n" not in message
    assert "`python.conda.channels`" in message and "plain-text password" in message
    assert FIX in message


@pytest.mark.parametrize("kind", sorted(LOADERS))
def test_every_format_refuses_a_channel_password(kind: str, tmp_path: Path) -> None:
    write, load = LOADERS[kind]
    with pytest.raises(InvalidDefinition) as caught:
        load(write(tmp_path))
    _check_refusal(caught.value.message)


def test_sdk_assignment_refuses_a_channel_password_and_changes_nothing() -> None:
    dependencies = CondaDependencies.create(conda_packages=["numpy=1.26.4"])
    before = list(dependencies.conda_channels)
    with pytest.raises(InvalidDefinition) as caught:
        dependencies.add_channel(PLAIN)
    _check_refusal(caught.value.message)
    assert dependencies.conda_channels == before

    definition = validate_definition({"name": "chan"})
    with pytest.raises(InvalidDefinition) as caught:
        assign(definition.python.conda, "channels", [PLAIN], where="python.conda")
    _check_refusal(caught.value.message)
    assert definition.python.conda.channels == []


def test_a_lone_token_is_refused_too() -> None:
    with pytest.raises(InvalidDefinition) as caught:
        validate_definition(
            {"name": "x", "python": {"conda": {"channels": [f"https://{PASSWORD}@h.example/c"]}}}
        )
    assert PASSWORD not in caught.value.message
    assert "https://USER:${ENV_VAR}@h.example/c" in caught.value.message


def _with_channel(channel: str) -> EnvironmentDefinition:
    return validate_definition({"name": "x", "python": {"conda": {"channels": [channel]}}})


def test_a_reference_is_kept_as_written_and_never_enters_a_digest() -> None:
    referenced = _with_channel("https://carol:${CONDA_PASSWORD}@conda.example/channel")
    other = _with_channel("https://dave:${OTHER_PASSWORD}@conda.example/channel/")
    bare = _with_channel("https://conda.example/channel")

    assert referenced.python.conda.channels == [
        "https://carol:${CONDA_PASSWORD}@conda.example/channel"
    ]
    assert build_hash(referenced) == build_hash(other) == build_hash(bare)
    assert definition_digest(referenced) == definition_digest(bare)
    assert build_hash(bare) != build_hash(_with_channel("https://conda.example/another"))
    compared = diff(referenced, other)
    assert compared.same_build and compared.same_definition and compared.changes == {}


def test_the_cli_refuses_the_password_and_never_expands_a_reference(tmp_path: Path) -> None:
    run_kiln("init", str(tmp_path / "ws"))
    cwd = tmp_path / "ws"
    plain = tmp_path / "plain"
    plain.mkdir()
    _conda_env(plain)
    refused = run_kiln("env", "register", "-d", str(plain), cwd=cwd, check=False)
    assert refused.returncode == 2 and FIX in refused.stderr
    assert PASSWORD not in refused.stdout + refused.stderr

    source = tmp_path / "ref"
    source.mkdir()
    referenced = {**CONDA, "channels": ["https://carol:${CONDA_PASSWORD}@conda.example/channel"]}
    (source / "environment.yml").write_text(yaml.safe_dump(referenced))
    env = {"CONDA_PASSWORD": PASSWORD}
    outputs = [run_kiln("env", "register", "-d", str(source), cwd=cwd, env=env)]
    listed = json.loads(run_kiln("env", "list", "--json", cwd=cwd, env=env).stdout)
    # the refused one left nothing behind: the referenced one is the first version of chan
    assert [str(e["version"]) for e in listed if e["name"] == "chan"] == ["1"]
    outputs.append(run_kiln("env", "show", "chan", cwd=cwd, env=env))
    outputs.append(run_kiln("env", "show", "chan", "--json", cwd=cwd, env=env))
    for fmt in ("kiln", "conda", "azure-v1", "azure-v2"):
        out = f"out-{fmt}"
        outputs.append(run_kiln("env", "download", "chan", "-d", out, "--format", fmt, cwd=cwd, env=env))  # fmt: skip
    assert "${CONDA_PASSWORD}" in outputs[2].stdout
    for result in outputs:
        assert PASSWORD not in result.stdout + result.stderr
    written = b"".join(p.read_bytes() for p in sorted(cwd.rglob("*")) if p.is_file())
    assert PASSWORD.encode() not in written


def test_a_stored_channel_password_is_never_shown_by_diff() -> None:
    stored = validate_definition(
        {"name": "x", "python": {"conda": {"channels": [PLAIN]}}}, stored=True
    )
    shown = json.dumps(diff(_with_channel("conda-forge"), stored).as_dict())
    assert PASSWORD not in shown and "https://carol:<redacted>@conda.example/channel" in shown
