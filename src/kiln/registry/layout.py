"""Table and column names of the registry, for the standard-library paths (``kiln env list``, a
warm ``kiln run submit``, ``kiln env exec`` or ``kiln env build``) that must not import
SQLAlchemy.

``schema.py`` declares the same tables with their types; tests/registry/test_layout.py checks
that every table here has exactly these columns there, in this order, so the fast SQL and the
SQLAlchemy tables cannot drift apart.
"""

from __future__ import annotations

ENVIRONMENT_VERSIONS = "environment_versions"
ENVIRONMENT_TAGS = "environment_tags"
RUNS = "runs"
RUN_METRICS = "run_metrics"
COMPUTE_TARGETS = "compute_targets"
LOCKS = "locks"
BUILDS = "builds"

COLUMNS: dict[str, tuple[str, ...]] = {
    ENVIRONMENT_VERSIONS: (
        "id",
        "name",
        "version",
        "version_number",
        "definition_digest",
        "build_hash",
        "definition",
        "description",
        "archived",
        "created_at",
        "created_by",
    ),
    ENVIRONMENT_TAGS: ("version_id", "key", "value"),
    RUNS: (
        "id",
        "experiment",
        "status",
        "script",
        "arguments",
        "snapshot_digest",
        "env_name",
        "env_version",
        "build_hash",
        "lock_digest",
        "platform",
        "compute_target",
        "target_job_id",
        "watcher",
        "process_group",
        "cancel_requested",
        "exit_code",
        "error",
        "log_digest",
        "outputs_digest",
        "outputs",
        "reproduces",
        "created_at",
        "started_at",
        "ended_at",
        "image_reference",
        "image_digest",
        "created_by",
        "snapshot_manifest",
        "outputs_manifest",
    ),
    RUN_METRICS: ("id", "run_id", "name", "value", "logged_at"),
    COMPUTE_TARGETS: ("name", "kind", "address", "created_at", "created_by"),
    LOCKS: (
        "id",
        "build_hash",
        "platform",
        "generation",
        "lock_digest",
        "lock_format",
        "lock_text",
        "packages",
        "resolver",
        "created_at",
    ),
    BUILDS: (
        "id",
        "build_hash",
        "platform",
        "lock_digest",
        "builder",
        "machine",
        "status",
        "error",
        "log_digest",
        "tool_versions",
        "started_at",
        "duration_ms",
        "created_by",
    ),
}

# Columns stored as 0/1 on SQLite that SQLAlchemy reads back as booleans.
BOOLEANS: dict[str, tuple[str, ...]] = {
    ENVIRONMENT_VERSIONS: ("archived",),
    RUNS: ("cancel_requested",),
}


def columns(table: str, *names: str) -> str:
    """``names`` (default: every column of ``table``) as an SQL column list; an unknown name
    raises, so a column name never reaches SQL text unchecked."""
    known = COLUMNS[table]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise KeyError(f"{table} has no column {', '.join(unknown)}")
    return ", ".join(names or known)
