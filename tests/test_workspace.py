"""Workspace creation, discovery order, configuration and schema migrations."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from kiln.errors import WorkspaceError
from kiln.registry.engine import current_revision
from kiln.registry.schema import SCHEMA_REVISION, metadata
from kiln.workspace import Workspace, user_default_path


def test_create_makes_a_usable_embedded_workspace(tmp_path: Path) -> None:
    ws = Workspace.create(tmp_path / "proj")
    assert (tmp_path / "proj" / ".kiln" / "workspace.json").is_file()
    assert (tmp_path / "proj" / ".kiln" / "registry.db").is_file()
    assert current_revision(ws.engine) == SCHEMA_REVISION
    assert Workspace.create(tmp_path / "proj").path == ws.path  # idempotent
    ws.close()


def test_opening_a_folder_without_workspace_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(
        WorkspaceError, match=r"no Kiln workspace at .*; create one with `kiln init"
    ):
        Workspace(tmp_path)


def test_discovery_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = Workspace.create(tmp_path / "explicit").path
    from_env = Workspace.create(tmp_path / "env").path
    upward = Workspace.create(tmp_path / "repo").path
    nested = tmp_path / "repo" / "src" / "deep"
    nested.mkdir(parents=True)
    monkeypatch.setenv("KILN_WORKSPACE", str(from_env))
    assert Workspace.discover(explicit, cwd=nested).path == explicit
    assert Workspace.discover(None, cwd=nested).path == from_env
    monkeypatch.delenv("KILN_WORKSPACE")
    assert Workspace.discover(None, cwd=nested).path == upward
    assert (
        Workspace.from_config(upward / ".kiln").path == upward
    )  # the .kiln folder itself works too


def test_per_user_default_refuses_under_tests(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KILN_WORKSPACE", raising=False)
    assert os.environ.get("PYTEST_VERSION")
    with pytest.raises(WorkspaceError, match="refusing the per-user default workspace under tests"):
        Workspace.discover(None, cwd=tmp_path)
    with pytest.raises(WorkspaceError):
        user_default_path()


def test_plain_text_database_password_is_refused(tmp_path: Path) -> None:
    with pytest.raises(
        WorkspaceError, match=r"plain-text password; write it as .*\$\{KILN_DB_PASSWORD\}"
    ):
        Workspace.create(tmp_path, database_url="postgresql+psycopg://u:hunter2@127.0.0.1/db")
    assert not (tmp_path / ".kiln").exists()


def test_unset_password_variable_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    with pytest.raises(WorkspaceError, match=r"\$\{NOT_SET_ANYWHERE\}, which is not set"):
        Workspace.create(
            tmp_path, database_url="postgresql+psycopg://u:${NOT_SET_ANYWHERE}@127.0.0.1/db"
        )


def test_postgres_workspace_hides_the_password(tmp_path: Path, postgres_url: str) -> None:
    ws = Workspace.create(tmp_path, database_url=postgres_url)
    assert "kiln-test-only" not in ws.database_display
    assert "kiln-test-only" not in repr(ws)
    assert "kiln-test-only" not in (tmp_path / ".kiln" / "workspace.json").read_text()
    assert current_revision(ws.engine) == SCHEMA_REVISION
    ws.close()


def test_migrations_match_the_tables_and_the_declared_head(workspace: Workspace) -> None:
    with workspace.engine.connect() as connection:
        context = MigrationContext.configure(connection)
        assert compare_metadata(context, metadata) == []
    config = Config()
    config.set_main_option(
        "script_location", str(Path(__file__).parents[1] / "src/kiln/registry/migrations")
    )
    assert ScriptDirectory.from_config(config).get_current_head() == SCHEMA_REVISION


def test_an_older_registry_is_upgraded_on_open_and_keeps_its_data(tmp_path: Path) -> None:
    from alembic import command

    from kiln import catalog
    from kiln.environment.definition import EnvironmentDefinition

    ws = Workspace.create(tmp_path)
    catalog.register(ws, EnvironmentDefinition(name="kept"))
    config = Config()
    config.set_main_option(
        "script_location", str(Path(__file__).parents[1] / "src/kiln/registry/migrations")
    )
    with ws.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0001")
    assert current_revision(ws.engine) == "0001"
    ws.close()
    reopened = Workspace(tmp_path)
    assert current_revision(reopened.engine) == SCHEMA_REVISION
    assert catalog.get(reopened, "kept").version == "1"
    reopened.close()


def test_a_cache_dir_setting_moves_the_builds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kiln.builds import open_cache

    monkeypatch.delenv("KILN_CACHE_DIR", raising=False)
    ws = Workspace.create(tmp_path / "p", cache_dir=str(tmp_path / "elsewhere"))
    assert open_cache(ws).root == tmp_path / "elsewhere"
    monkeypatch.setenv("KILN_CACHE_DIR", str(tmp_path / "env-wins"))
    assert open_cache(ws).root == tmp_path / "env-wins"
    ws.close()


def test_an_unreachable_database_leaves_no_workspace_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UNREACHABLE_PW", "x")
    url = "postgresql+psycopg://kiln:${UNREACHABLE_PW}@127.0.0.1:1/kiln?connect_timeout=2"
    # A server that is not running is not a damaged registry: no "restore from a backup".
    with pytest.raises(WorkspaceError, match=r"cannot reach the registry at .*server is running"):
        Workspace.create(tmp_path / "p", database_url=url)
    assert not (tmp_path / "p" / ".kiln").exists()
    Workspace.create(tmp_path / "p").close()  # the corrected retry works


def test_a_new_workspace_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    import stat

    ws = Workspace.create(tmp_path / "private")
    registry = ws.root / "registry.db"
    with ws.engine.begin() as connection:  # a write, so the WAL exists too
        connection.exec_driver_sql("CREATE TABLE probe (x INTEGER)")
    for path in (ws.root, ws.root / "artifacts"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    for path in (registry, *ws.root.glob("registry.db-*")):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    ws.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="creating a PostgreSQL role needs `su postgres`")
def test_a_postgres_role_without_rights_is_a_clear_workspace_error(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A role that may connect but not create tables (PostgreSQL 15's default for the public
    schema) gets one line at `kiln init`, not a crash, and no workspace is left behind."""
    import subprocess
    import uuid

    role = f"kiln_norights_{uuid.uuid4().hex[:8]}"
    sql = f"CREATE ROLE {role} LOGIN PASSWORD 'norights-only'"
    subprocess.run(["su", "postgres", "-c", f'psql -q -c "{sql}"'], check=True)
    try:
        monkeypatch.setenv("KILN_TEST_NORIGHTS", "norights-only")
        database = postgres_url.rsplit("/", 1)[1]
        url = f"postgresql+psycopg://{role}:${{KILN_TEST_NORIGHTS}}@127.0.0.1:5432/{database}"
        with pytest.raises(WorkspaceError) as caught:
            Workspace.create(tmp_path / "w", database_url=url)
        message = str(caught.value)
        assert f"the database role {role!r} may not change Kiln's tables" in message
        assert "norights-only" not in message
        assert not (tmp_path / "w" / ".kiln").exists()
    finally:
        drop = f"DROP OWNED BY {role}; DROP ROLE {role}"
        subprocess.run(["su", "postgres", "-c", f'psql -q -d {database} -c "{drop}"'], check=False)
