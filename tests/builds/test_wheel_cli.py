"""``kiln wheel add|list`` and ``wheel:FILENAME`` entries, through the real CLI."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from kiln import catalog
from kiln.environment.validation import validate_definition
from kiln.errors import InvalidDefinition
from kiln.workspace import Workspace
from kilntesting.builds import PackageIndex, make_wheel
from kilntesting.cli import run_kiln

WHEEL = "demo-1.0-py3-none-any.whl"


def kiln_yaml(folder: Path, index_url: str, entry: str = f"wheel:{WHEEL}") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "kiln.yaml"
    path.write_text(
        "name: private-demo\n"
        "python:\n"
        '  version: "3.11"\n'
        "  pip:\n"
        f"    index_url: {index_url}\n"
        f"    packages: ['{entry}']\n",
        encoding="utf-8",
    )
    return path


def artifact_files(workspace: Workspace) -> list[Path]:
    return [p for p in workspace.artifacts.root.rglob("*") if p.is_file()]


def test_a_stored_wheel_is_listed_named_in_a_definition_built_and_run(
    sqlite_workspace: Workspace,
    package_index: PackageIndex,
    tmp_path: Path,
    cli_env: dict[str, str],
) -> None:
    wheel = make_wheel(tmp_path / "made", "demo", "1.0")

    added = json.loads(run_kiln("wheel", "add", str(wheel), "--json", env=cli_env).stdout)
    again = run_kiln("wheel", "add", str(wheel), env=cli_env)
    listed = json.loads(run_kiln("wheel", "list", "--json", env=cli_env).stdout)

    assert added["added"] is True and added["entry"] == f"wheel:{WHEEL}"
    assert "already stored" in again.stdout and "nothing changed" in again.stdout
    assert [(w["name"], w["version"], w["filename"]) for w in listed] == [("demo", "1.0", WHEEL)]
    assert listed[0]["sha256"] == added["sha256"] and listed[0]["size"] == wheel.stat().st_size
    wheel.unlink()  # builds take it from the workspace

    definition = kiln_yaml(tmp_path / "def", package_index.url)
    run_kiln("env", "register", "-f", str(definition), env=cli_env)
    run_kiln("env", "build", "private-demo", env=cli_env)
    code = "import demo; print(demo.__version__)"
    ran = run_kiln("env", "exec", "private-demo", "--", "python", "-c", code, env=cli_env)

    assert ran.stdout.strip() == "1.0"
    record = catalog.get(sqlite_workspace, "private-demo")
    assert record.definition.python.pip.file_digests == {f"wheel:{WHEEL}": added["sha256"]}


def test_a_wheel_by_name_and_by_path_hash_alike(
    workspace: Workspace, package_index: PackageIndex, tmp_path: Path
) -> None:
    from kiln.formats.dispatch import load_path
    from kiln.wheels import add_wheel

    wheel = make_wheel(tmp_path / "made", "demo", "1.0")
    add_wheel(workspace, wheel)
    (tmp_path / "byname").mkdir()
    by_name = load_path(kiln_yaml(tmp_path / "byname", package_index.url), None).definition
    by_path_file = kiln_yaml(tmp_path / "made", package_index.url, f"./simple/demo/{WHEEL}")
    by_path = load_path(by_path_file, None).definition

    named = catalog.register(workspace, by_name).record
    pathed = catalog.register(workspace, by_path, source_dir=by_path_file.parent).record

    assert named.build_hash == pathed.build_hash


def test_an_unknown_stored_wheel_is_refused_at_register(workspace: Workspace) -> None:
    data = {
        "name": "x",
        "python": {"version": "3.11", "pip": {"packages": [f"wheel:{WHEEL}"]}},
    }
    with pytest.raises(InvalidDefinition) as caught:
        catalog.register(workspace, validate_definition(data))

    assert f"'wheel:{WHEEL}' names no wheel stored in" in str(caught.value)
    assert f"kiln wheel add PATH/{WHEEL}" in str(caught.value)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"not a zip at all", "is a corrupt wheel: not a readable zip"),
        ("no-metadata", "is not a valid wheel: it has no demo-1.0.dist-info/METADATA"),
        ("other-name", "its METADATA says other 1.0 but the file name says demo 1.0"),
    ],
)
def test_a_corrupt_wheel_exits_2_and_stores_nothing(
    sqlite_workspace: Workspace,
    tmp_path: Path,
    cli_env: dict[str, str],
    content: bytes | str,
    expected: str,
) -> None:
    bad = tmp_path / WHEEL
    if isinstance(content, bytes):
        bad.write_bytes(content)
    else:
        with zipfile.ZipFile(bad, "w") as archive:
            if content == "other-name":
                archive.writestr("demo-1.0.dist-info/METADATA", "Name: other\nVersion: 1.0\n")
            else:
                archive.writestr("demo/__init__.py", "")
    before = artifact_files(sqlite_workspace)

    result = run_kiln("wheel", "add", str(bad), env=cli_env, check=False)

    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert json.loads(run_kiln("wheel", "list", "--json", env=cli_env).stdout) == []
    assert artifact_files(sqlite_workspace) == before


def test_a_different_wheel_under_a_stored_file_name_is_refused(
    sqlite_workspace: Workspace, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    run_kiln("wheel", "add", str(make_wheel(tmp_path / "a", "demo", "1.0")), env=cli_env)
    rebuilt = make_wheel(tmp_path / "b", "demo", "1.0", body="X = 1")

    result = run_kiln("wheel", "add", str(rebuilt), env=cli_env, check=False)

    assert result.returncode == 4
    assert f"a different wheel named {WHEEL} is stored already" in result.stderr
