"""Every ``--json`` output has a published schema, the published files are fresh, and each
command's output fits its schema (``run_kiln`` checks every ``--json`` output any test sees;
the commands below are exercised here so each is checked at least once, command by command)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest

from kiln.cli.main import build_parser
from kiln.schemas import json_schemas
from kilntesting.cli import REPO, run_kiln


def _leaf_parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from _leaf_parsers(child, (*path, name))
            return
    yield path, parser


def test_every_json_command_declares_a_published_schema() -> None:
    published = json_schemas()
    with_json = []
    for path, parser in _leaf_parsers(build_parser()):
        if any("--json" in a.option_strings for a in parser._actions):
            schema = parser.get_default("json_schema")
            assert schema in published, f"`kiln {' '.join(path)} --json` declares {schema!r}"
            with_json.append(path)
    assert ("env", "list") in with_json and len(with_json) > 20


def test_the_published_schema_files_are_fresh(tmp_path: Path) -> None:
    from kiln.schemas import write_schemas

    fresh = {p.name: p.read_text() for p in write_schemas(tmp_path)}
    folder = REPO / "schema" / "public"
    committed = {p.name: p.read_text() for p in folder.glob("*.schema.json")}
    assert committed == fresh, "run `python -m kiln.schemas` and commit schema/public/"


def test_the_schemas_refuse_unknown_and_missing_fields() -> None:
    from jsonschema import Draft202012Validator

    document = json_schemas()["environment-version"]
    good = {
        "name": "a",
        "version": "1",
        "description": None,
        "tags": {},
        "build_hash": "b" * 64,
        "definition_digest": "d" * 64,
        "created_at": "2026-01-01T00:00:00+00:00",
        "created_by": "alice",
        "archived": False,
        "curated": False,
    }
    assert Draft202012Validator(document).is_valid(good)
    assert not Draft202012Validator(document).is_valid({**good, "runId": "x"})
    assert not Draft202012Validator(document).is_valid(
        {k: v for k, v in good.items() if k != "name"}
    )


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # `kiln cache list` refuses the per-user cache under tests: give the commands one of their own.
    monkeypatch.setenv("KILN_CACHE_DIR", str(tmp_path / "cache"))
    run_kiln("init", str(tmp_path), "--json")
    run_kiln("env", "scaffold", "-n", "demo", "-d", "envdir", "--json", cwd=tmp_path)
    run_kiln("env", "register", "-d", "envdir", "--json", cwd=tmp_path)
    return tmp_path


def test_environment_commands_fit_their_schemas(project: Path) -> None:
    commands = [
        ("env", "list", "--all-versions"),
        ("env", "show", "demo:1", "--runs"),
        ("env", "hash", "demo"),
        ("env", "diff", "demo:1", "envdir"),
        ("env", "tag", "demo:1", "team=ml"),
        ("env", "archive", "demo:1"),
        ("env", "restore", "demo"),
        ("env", "download", "demo:1", "-d", "out", "--format", "conda"),
        ("wheel", "list"),
        ("target", "list"),
        ("model", "list"),
        ("deploy", "list"),
        ("run", "list"),
        ("cache", "list"),
    ]
    for command in commands:
        result = run_kiln(*command, "--json", cwd=project)  # checks the schema
        assert json.loads(result.stdout) is not None
    lint = run_kiln("env", "lint", "demo", "--json", cwd=project, check=False)
    assert lint.returncode in (0, 1) and json.loads(lint.stdout)["source"] == "demo:1"


def test_a_read_command_never_creates_a_workspace(tmp_path: Path) -> None:
    """Outside any workspace and with no per-user default, reading says so and makes nothing."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTEST_VERSION", "KILN_WORKSPACE")}
    env.update(XDG_DATA_HOME=str(tmp_path / "data"), HOME=str(tmp_path / "home"))
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    for command in (("env", "show", "demo"), ("env", "list"), ("run", "list"), ("model", "list")):
        result = run_kiln(*command, cwd=outside, env=env, check=False, inherit=False)
        assert result.returncode == 5, (command, result.stderr)
        assert "no Kiln workspace here or above" in result.stderr
    assert not (tmp_path / "data").exists() and not (tmp_path / "home").exists()


def test_a_reference_with_two_colons_is_invalid_input_not_missing(project: Path) -> None:
    result = run_kiln("env", "show", "demo:1:2", cwd=project, check=False)
    assert result.returncode == 2, result.stderr
    assert "'demo:1:2' has more than one ':'; write NAME or NAME:VERSION" in result.stderr
