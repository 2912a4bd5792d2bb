"""The CLI as a user runs it: real subprocesses, a real workspace, real files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kilntesting.builds import make_wheel
from kilntesting.cli import run_kiln


@pytest.fixture
def project(tmp_path: Path) -> Path:
    run_kiln("init", str(tmp_path))
    return tmp_path


def _rows(project: Path) -> dict[str, int]:
    """Row counts of every registry table (the WAL file makes comparing bytes meaningless)."""
    import sqlite3

    with sqlite3.connect(project / ".kiln" / "registry.db") as connection:
        tables = [
            t for (t,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        return {t: connection.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


def _packages(path: Path, *packages: str) -> None:
    text = path.read_text()
    start = text.index("    packages:\n") + len("    packages:\n")
    end = text.index("environment_variables:")
    path.write_text(text[:start] + "".join(f"    - {p}\n" for p in packages) + text[end:])


def test_quickstart_flow(project: Path) -> None:
    run_kiln("env", "scaffold", "-n", "demo", "-d", "envdir", cwd=project)
    first = json.loads(run_kiln("env", "register", "-d", "envdir", "--json", cwd=project).stdout)
    assert (first["name"], first["version"], first["created"]) == ("demo", "1", True)
    again = json.loads(run_kiln("env", "register", "-d", "envdir", "--json", cwd=project).stdout)
    assert (again["version"], again["created"]) == ("1", False)
    assert (
        "Unchanged: same content as demo:1"
        in run_kiln("env", "register", "-d", "envdir", cwd=project).stdout
    )
    _packages(project / "envdir" / "kiln.yaml", "numpy==2.4.6", "pandas==3.1.1")
    second = json.loads(run_kiln("env", "register", "-d", "envdir", "--json", cwd=project).stdout)
    assert (second["version"], second["created"]) == ("2", True)
    listed = json.loads(run_kiln("env", "list", "--json", "--no-curated", cwd=project).stdout)
    assert [(e["name"], e["version"]) for e in listed] == [("demo", "2")]
    assert set(listed[0]) >= {
        "name",
        "version",
        "build_hash",
        "definition_digest",
        "created_at",
        "archived",
        "tags",
    }
    shown = json.loads(run_kiln("env", "show", "demo:1", "--json", cwd=project).stdout)
    assert shown["definition"]["python"]["pip"]["packages"] == ["numpy==2.4.6"]
    diff = run_kiln("env", "diff", "demo:1", "demo:2", cwd=project).stdout
    assert "python.pip.packages: + pandas==3.1.1" in diff
    hashed = json.loads(run_kiln("env", "hash", "-d", "envdir", "--json", cwd=project).stdout)
    assert hashed["build_hash"] == second["build_hash"]


def test_order_only_difference_is_called_out(project: Path) -> None:
    run_kiln("env", "scaffold", "-n", "o", "-d", "a", cwd=project)
    run_kiln("env", "scaffold", "-n", "o", "-d", "b", cwd=project)
    _packages(project / "a" / "kiln.yaml", "numpy==2.4.6", "pandas==3.1.1")
    _packages(project / "b" / "kiln.yaml", "pandas==3.1.1", "numpy==2.4.6")
    result = json.loads(run_kiln("env", "diff", "a", "b", "--json", cwd=project).stdout)
    assert result["order_only"] is True and result["same_build"] is False
    text = run_kiln("env", "diff", "a", "b", cwd=project).stdout
    assert "only the order differs" in text


def test_bad_input_is_one_line_non_zero_and_changes_nothing(project: Path) -> None:
    bad = project / "bad.yaml"
    bad.write_text("name: ok\npython:\n  pip:\n    packages: ['numpy==2', '# not a package']\n")
    before = sorted(p.name for p in (project / ".kiln" / "artifacts").rglob("*"))
    rows_before = _rows(project)
    result = run_kiln("env", "register", "-f", str(bad), cwd=project, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"kiln: error: `python.pip.packages` in {bad}: entry 1: '# not a package' is a comment, not a package"
    ]
    assert sorted(p.name for p in (project / ".kiln" / "artifacts").rglob("*")) == before
    assert _rows(project) == rows_before
    debug = run_kiln("--debug", "env", "register", "-f", str(bad), cwd=project, check=False)
    assert "Traceback" in debug.stderr


def test_unknown_environment_exit_code(project: Path) -> None:
    result = run_kiln("env", "show", "missing:4", cwd=project, check=False)
    assert result.returncode == 3
    assert "no environment missing:4" in result.stderr


def test_curated_are_listed_and_cannot_be_taken(project: Path) -> None:
    listed = json.loads(run_kiln("env", "list", "--json", cwd=project).stdout)
    assert any(e["curated"] and e["name"] == "Kiln-minimal-py311" for e in listed)
    run_kiln("env", "download", "Kiln-minimal-py311", "-d", "cur", cwd=project)
    result = run_kiln("env", "register", "-d", "cur", cwd=project, check=False)
    assert result.returncode == 4 and "register it as 'minimal-py311'" in result.stderr
    run_kiln("env", "register", "-d", "cur", "-n", "minimal-py311", cwd=project)


def test_download_in_every_format_registers_back_to_the_same_version(project: Path) -> None:
    run_kiln("env", "scaffold", "-n", "dl", "-d", "src", cwd=project)
    run_kiln("env", "register", "-d", "src", cwd=project)
    for fmt in ("kiln", "azure-v1", "conda"):
        run_kiln("env", "download", "dl:1", "-d", f"out-{fmt}", "--format", fmt, cwd=project)
        again = json.loads(
            run_kiln("env", "register", "-d", f"out-{fmt}", "--json", cwd=project).stdout
        )
        assert (again["version"], again["created"]) == ("1", False), fmt
    refused = run_kiln("env", "download", "dl:1", "-d", "out-kiln", cwd=project, check=False)
    assert refused.returncode == 4 and "--force" in refused.stderr


def test_archive_restore_and_tags(project: Path) -> None:
    run_kiln("env", "scaffold", "-n", "arc", "-d", "src", cwd=project)
    run_kiln("env", "register", "-d", "src", cwd=project)
    run_kiln("env", "archive", "arc:1", cwd=project)
    assert json.loads(run_kiln("env", "list", "--json", "--no-curated", cwd=project).stdout) == []
    assert (
        json.loads(run_kiln("env", "show", "arc:1", "--json", cwd=project).stdout)["archived"]
        is True
    )
    run_kiln("env", "restore", "arc", cwd=project)
    run_kiln("env", "tag", "arc:1", "stage=prod", cwd=project)
    found = json.loads(run_kiln("env", "list", "--json", "--tag", "stage=prod", cwd=project).stdout)
    assert [e["name"] for e in found] == ["arc"]
    bad = run_kiln("env", "tag", "arc:1", "novalue", cwd=project, check=False)
    assert bad.returncode == 2 and "must be KEY=VALUE" in bad.stderr


def test_lint_reports_and_sets_exit_code(project: Path) -> None:
    env = project / "lint.yaml"
    env.write_text(
        "name: l\npython:\n  pip:\n    packages: [numpy, numpy==2.4.6]\ndocker:\n  base_image: ubuntu\n"
    )
    result = run_kiln("env", "lint", "-f", str(env), "--json", cwd=project, check=False)
    assert result.returncode == 1
    fields = {f["field"] for f in json.loads(result.stdout)["findings"]}
    assert {"python.pip.packages[0]", "python.pip.packages[1]", "docker.base_image"} <= fields
    ok = project / "ok.yaml"
    ok.write_text("name: l\npython:\n  pip:\n    packages: [numpy==2.4.6]\n")
    assert (
        run_kiln("env", "lint", "-f", str(ok), cwd=project)
        .stdout.strip()
        .endswith("no problems found")
    )


def test_workspace_flag_and_variable(tmp_path: Path) -> None:
    run_kiln("init", str(tmp_path / "ws"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run_kiln("env", "scaffold", "-n", "w", "-d", str(elsewhere / "e"), cwd=elsewhere)
    run_kiln("--workspace", str(tmp_path / "ws"), "env", "register", "-d", "e", cwd=elsewhere)
    listed = run_kiln(
        "env",
        "list",
        "--json",
        "--no-curated",
        cwd=elsewhere,
        env={"KILN_WORKSPACE": str(tmp_path / "ws")},
    )
    assert [e["name"] for e in json.loads(listed.stdout)] == ["w"]
    nowhere = run_kiln("env", "list", cwd=elsewhere, check=False, env={"KILN_WORKSPACE": ""})
    assert nowhere.returncode == 5 and "per-user default" in nowhere.stderr


def test_help_and_module_entry_point() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kiln", "env", "--help"], capture_output=True, text=True, check=True
    )
    for command in (
        "scaffold",
        "register",
        "list",
        "show",
        "download",
        "hash",
        "diff",
        "archive",
        "restore",
        "lint",
    ):
        assert command in result.stdout
    # --help must not import the heavy parts (lazy imports keep it instant)
    probe = "import sys; from kiln.cli.main import build_parser; build_parser(); print(sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy','pydantic','yaml','alembic')))"
    assert (
        subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        ).stdout.strip()
        == "[]"
    )


def test_every_option_of_every_command_says_what_it_is_for() -> None:
    import argparse

    from kiln.cli.main import build_parser

    silent = []

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{path} {name}")
            elif action.option_strings and not action.help:
                silent.append(f"{path} {action.option_strings[-1]}")

    walk(build_parser(), "kiln")
    assert silent == []


def test_unexpected_errors_leave_a_log(project: Path, tmp_path: Path) -> None:
    # A corrupt registry file is not bad input from the user: it must not be a bare traceback.
    (project / ".kiln" / "registry.db").write_bytes(b"this is not sqlite" * 100)
    for wal in (project / ".kiln").glob("registry.db-*"):
        wal.unlink()
    result = run_kiln(
        "env", "list", "--search", "x", cwd=project, check=False, env={"TMPDIR": str(tmp_path)}
    )
    assert result.returncode == 5
    assert result.stderr.startswith("kiln: error: cannot open the registry at ")
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_bug_exits_70_with_a_private_redacted_crash_log(project: Path, tmp_path: Path) -> None:
    # A real bug cannot be ordered up; this makes one by handing a file where a folder belongs.
    (project / ".kiln" / "artifacts").rmdir()
    (project / ".kiln" / "artifacts").write_text("not a folder")
    run_kiln("env", "scaffold", "-n", "crash", "-d", "src", cwd=project)
    (project / "src" / "wheels").mkdir()
    wheel = make_wheel(project / "made", "x", "1.0")  # a real one: register checks it is one
    (project / "src" / "wheels" / "x-1.0-py3-none-any.whl").write_bytes(wheel.read_bytes())
    text = (
        (project / "src" / "kiln.yaml")
        .read_text()
        .replace("    - numpy==2.4.6", "    - numpy==2.4.6\n    - ./wheels/x-1.0-py3-none-any.whl")
    )
    (project / "src" / "kiln.yaml").write_text(text)
    result = run_kiln(
        "env",
        "register",
        "-d",
        "src",
        "--name",
        "crash",
        cwd=project,
        check=False,
        env={"TMPDIR": str(tmp_path)},
    )
    assert result.returncode == 70, result.stderr
    logs = list(tmp_path.glob("kiln-crash-*.log"))
    assert len(logs) == 1 and oct(logs[0].stat().st_mode & 0o777) == "0o600"
    content = logs[0].read_text()
    assert "Traceback" in content and "kiln 0.1.0" in content
    assert str(logs[0]) in result.stderr


def test_download_never_overwrites_or_deletes_without_force(project: Path) -> None:
    run_kiln("env", "scaffold", "-n", "keep", "-d", "src", cwd=project)
    run_kiln("env", "register", "-d", "src", cwd=project)
    out = project / "out"
    (out / "notes").mkdir(parents=True)
    (out / "notes" / "mine.txt").write_text("precious")
    (out / "conda_dependencies.yml").write_text("name: mine\n")
    refused = run_kiln(
        "env", "download", "keep", "-d", "out", "--format", "azure-v1", cwd=project, check=False
    )
    assert refused.returncode == 4
    assert "conda_dependencies.yml already exists; pass --force" in refused.stderr
    assert (out / "conda_dependencies.yml").read_text() == "name: mine\n"
    assert sorted(p.name for p in out.iterdir()) == ["conda_dependencies.yml", "notes"]
    run_kiln("env", "download", "keep", "-d", "out", "--format", "azure-v1", "--force", cwd=project)
    assert (out / "notes" / "mine.txt").read_text() == "precious"  # not ours: left alone
    assert "name: project_environment" in (out / "conda_dependencies.yml").read_text()


def test_overrides_on_register_are_validated(project: Path) -> None:
    run_kiln("env", "scaffold", "-n", "ov", "-d", "src", cwd=project)
    for flag, value, field in (
        ("--name", "a/b", "`name`"),
        ("--version", "latest", "`version`"),
        ("--name", "", "`name`"),
    ):
        result = run_kiln("env", "register", "-d", "src", flag, value, cwd=project, check=False)
        assert result.returncode == 2, (flag, value, result.stderr)
        assert field in result.stderr


def test_init_without_a_path_creates_the_workspace_later_commands_find(tmp_path: Path) -> None:
    # --workspace and $KILN_WORKSPACE name where every later command looks: init uses them too.
    run_kiln("-w", "by-flag", "init", cwd=tmp_path)
    run_kiln("init", cwd=tmp_path, env={"KILN_WORKSPACE": str(tmp_path / "by-env")})
    assert (tmp_path / "by-flag" / ".kiln").is_dir() and (tmp_path / "by-env" / ".kiln").is_dir()
    assert not (tmp_path / ".kiln").exists()
    listed = run_kiln("env", "list", "--json", cwd=tmp_path, env={"KILN_WORKSPACE": "by-env"})
    assert {e["tags"].get("curated") for e in json.loads(listed.stdout)} == {"true"}

    clash = run_kiln("-w", "one", "init", "two", cwd=tmp_path, check=False)
    assert clash.returncode == 2 and "--workspace" in clash.stderr
    assert not (tmp_path / "one").exists() and not (tmp_path / "two").exists()


def test_a_name_kiln_chose_is_said_and_a_mistyped_one_gets_a_suggestion(tmp_path: Path) -> None:
    (tmp_path / "iris-model").mkdir()
    (tmp_path / "iris-model" / "requirements.txt").write_text("six==1.16.0\n")
    run_kiln("init", cwd=tmp_path)
    registered = run_kiln("env", "register", "-f", "iris-model/requirements.txt", cwd=tmp_path)
    assert "registered as `iris-model`, its folder's name; pass -n NAME" in registered.stderr
    again = run_kiln("env", "register", "-f", "iris-model/requirements.txt", cwd=tmp_path)
    assert again.stderr == registered.stderr  # the unchanged (fast) path says it too
    named = run_kiln(
        "env", "register", "-f", "iris-model/requirements.txt", "-n", "x", cwd=tmp_path
    )
    assert "folder's name" not in named.stderr

    typo = run_kiln("env", "show", "iris-modle", cwd=tmp_path, check=False)
    assert typo.returncode == 3 and "did you mean `iris-model`?" in typo.stderr
    missing = run_kiln("env", "show", "iris-model:9", cwd=tmp_path, check=False)
    assert missing.returncode == 3 and "--search iris-model" in missing.stderr


def test_download_as_azure_v2_names_a_base_image_and_says_so(project: Path) -> None:
    run_kiln("env", "scaffold", "-n", "noimage", "-d", "src", cwd=project)
    run_kiln("env", "register", "-d", "src", cwd=project)
    plain = run_kiln(
        "env", "download", "noimage:1", "-d", "v2", "--format", "azure-v2", cwd=project
    )
    assert "names no base image and Azure ML v2 requires one" in plain.stderr
    assert "image: mcr.microsoft.com/azureml/" in (project / "v2" / "environment.yaml").read_text()
    chosen = run_kiln(
        *("env", "download", "noimage:1", "-d", "v2b", "--format", "azure-v2"),
        cwd=project,
        env={"KILN_BASE_IMAGE": "registry.example/team/base:2"},
    )
    assert "the workspace's default base image" in chosen.stderr
    text = (project / "v2b" / "environment.yaml").read_text()
    assert "image: registry.example/team/base:2\n" in text


def test_a_v1_file_naming_only_a_registered_version_is_that_version(project: Path) -> None:
    run_kiln("env", "scaffold", "-n", "base", "-d", "src", "--format", "azure-v1", cwd=project)
    run_kiln("env", "register", "-d", "src", cwd=project)
    (project / "ref").mkdir()
    (project / "ref" / "azureml_environment.json").write_text('{"name": "base", "version": "1"}')
    again = json.loads(run_kiln("env", "register", "-d", "ref", "--json", cwd=project).stdout)
    assert (again["name"], again["version"], again["created"]) == ("base", "1", False)

    (project / "ref" / "azureml_environment.json").write_text('{"name": "base", "version": "9"}')
    missing = run_kiln("env", "register", "-d", "ref", cwd=project, check=False)
    assert missing.returncode == 3
    assert "azureml_environment.json refers to the registered environment base:9: no " in (
        missing.stderr
    )
    assert (
        run_kiln(
            "env", "download", "base:1", "-d", "v1", "--format", "azure-v1", cwd=project
        ).stderr
        == ""
    )
