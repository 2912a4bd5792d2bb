"""The registry's tables (SQLAlchemy Core). Alembic migrations own the real schema; a test
checks that these tables and the migrated database agree."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from kiln.registry.revision import SCHEMA_REVISION

__all__ = [
    "SCHEMA_REVISION",
    "audit",
    "build_leases",
    "builds",
    "compute_targets",
    "deployments",
    "environment_names",
    "environment_tags",
    "environment_versions",
    "locks",
    "metadata",
    "models",
    "run_metrics",
    "runs",
    "tokens",
    "users",
    "wheels",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# One row per environment name: the row that concurrent registrations of a name lock.
environment_names = Table(
    "environment_names",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

environment_versions = Table(
    "environment_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), ForeignKey("environment_names.name"), nullable=False),
    Column("version", String(64), nullable=False),
    # The integer value of versions Kiln assigned ("7"); NULL for free-form ones ("2.0").
    Column("version_number", Integer, nullable=True),
    Column("definition_digest", String(64), nullable=False),
    Column("build_hash", String(64), nullable=False),
    # The definition as JSON without name, version, description and tags (kept in columns).
    Column("definition", Text, nullable=False),
    Column("description", Text, nullable=True),
    Column("archived", Boolean, nullable=False, default=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # The account that registered it (a server user, or the local user on an embedded registry).
    Column("created_by", String(255), nullable=True),
    UniqueConstraint("name", "version"),
    Index(None, "name", "definition_digest"),
    Index(None, "build_hash"),
)

environment_tags = Table(
    "environment_tags",
    metadata,
    Column(
        "version_id",
        Integer,
        ForeignKey("environment_versions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", String(255), primary_key=True),
    Column("value", Text, nullable=False),
    Index(None, "key", "value"),
)


# The first resolution of a build hash for a platform; --refresh adds a generation, never edits.
locks = Table(
    "locks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("build_hash", String(64), nullable=False),
    Column("platform", String(64), nullable=False),
    Column("generation", Integer, nullable=False),
    Column("lock_digest", String(64), nullable=False),
    Column("lock_format", String(32), nullable=False),
    Column("lock_text", Text, nullable=False),
    Column("packages", Text, nullable=False),  # JSON [{"name", "version"}], for diffs and show
    Column("resolver", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("build_hash", "platform", "generation"),
)

# One row per build attempt on any machine: what was built, how it went, where its log is.
builds = Table(
    "builds",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("build_hash", String(64), nullable=False),
    Column("platform", String(64), nullable=False),
    Column("lock_digest", String(64), nullable=True),
    Column("builder", String(32), nullable=False),
    Column("machine", String(255), nullable=False),
    Column("status", String(16), nullable=False),  # succeeded | failed
    Column("error", Text, nullable=True),
    Column("log_digest", String(64), nullable=True),  # the full log, in the artifact store
    Column("tool_versions", Text, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("duration_ms", Integer, nullable=False),
    Column("created_by", String(255), nullable=True),  # who asked for it (see environment_versions)
    Index(None, "build_hash", "platform"),
)

# Wheels stored with ``kiln wheel add``: the file is in the artifact store by its sha256;
# definitions name it ``wheel:FILENAME`` (so a file name maps to exactly one content).
wheels = Table(
    "wheels",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False),  # PEP 503 canonical
    Column("version", String(128), nullable=False),
    Column("filename", String(512), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("added_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("sha256"),
    UniqueConstraint("filename"),
    Index(None, "name"),
)

# One row per run. Times are epoch seconds (floats) and JSON is text, so the queries of
# run_queries.py (SQLAlchemy) and fastruns.py (the standard library's sqlite3, for the warm
# `kiln run submit` path that must not import SQLAlchemy) store and return the same values.
# The tables the standard-library paths read are also named in layout.py (checked by a test).
runs = Table(
    "runs",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("experiment", String(255), nullable=False),
    Column("status", String(32), nullable=False),
    Column("script", Text, nullable=False),
    Column("arguments", Text, nullable=False),  # JSON list
    Column("snapshot_digest", String(64), nullable=False),
    Column("env_name", String(255), nullable=False),
    Column("env_version", String(64), nullable=False),
    Column("build_hash", String(64), nullable=False),
    Column("lock_digest", String(64), nullable=True),  # set once the environment is ready
    Column("platform", String(64), nullable=True),
    Column("compute_target", String(512), nullable=False),
    Column("target_job_id", String(255), nullable=True),  # e.g. the Ray submission id
    # The process that watches the run ("HOST:PID:START"), and the script's process group:
    # lets any later command notice a watcher that died and settle the run.
    Column("watcher", String(255), nullable=True),
    Column("process_group", Integer, nullable=True),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("exit_code", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("log_digest", String(64), nullable=True),
    Column("outputs_digest", String(64), nullable=True),
    Column("outputs", Text, nullable=False),  # JSON [{"name", "size"}]
    Column("reproduces", String(128), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("ended_at", Float, nullable=True),
    # The image a container run ran in (reference and manifest digest): reproduce uses it.
    Column("image_reference", String(512), nullable=True),
    Column("image_digest", String(80), nullable=True),
    Column("created_by", String(255), nullable=True),  # who submitted it
    # On a team server: the checked manifests of the snapshot and outputs (kiln/filetrees.py).
    Column("snapshot_manifest", String(64), nullable=True),
    Column("outputs_manifest", String(64), nullable=True),
    Index(None, "experiment", "created_at"),
    Index(None, "env_name", "env_version"),
)

run_metrics = Table(
    "run_metrics",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(128), ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(255), nullable=False),
    Column("value", Text, nullable=False),  # JSON
    Column("logged_at", Float, nullable=False),
    Index(None, "run_id", "name"),
)

# Compute targets registered by name (`kiln target add`): a Ray address a team shares.
compute_targets = Table(
    "compute_targets",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("kind", String(32), nullable=False),
    Column("address", String(512), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(255), nullable=True),  # who named it (None: before Kiln kept it)
)

# Registered models: a file or a folder in the artifact store, with its lineage (the run that
# produced it and that run's environment) when it came from a run.
models = Table(
    "models",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False),
    Column("version", Integer, nullable=False),
    Column("digest", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # file | folder
    Column("file_name", String(512), nullable=False),  # the file's (or folder's) own name
    Column("size", BigInteger, nullable=False),
    Column("description", Text, nullable=True),
    Column("tags", Text, nullable=False),  # JSON
    Column("run_id", String(128), nullable=True),
    Column("env_name", String(255), nullable=True),
    Column("env_version", String(64), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("created_by", String(255), nullable=True),  # who registered it
    # A folder registered on a team server: its checked manifest there (kiln/filetrees.py).
    Column("manifest", String(64), nullable=True),
    UniqueConstraint("name", "version"),
)

# Deployments: the wanted spec (JSON, references to versions only, ${VAR} never expanded), what
# the supervisor process made of it, and who that supervisor is; a container deployment also
# keeps the image (by digest) and the containers of the generation that serves.
deployments = Table(
    "deployments",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("state", String(32), nullable=False),
    Column("spec", Text, nullable=False),
    Column("generation", Integer, nullable=False),  # bumped by every update
    Column("applied_generation", Integer, nullable=False),  # the one serving now (0: none yet)
    Column("host", String(255), nullable=False),
    Column("port", Integer, nullable=True),
    Column("supervisor", String(255), nullable=True),  # "HOST:PID:START", as a run's watcher
    Column("error", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("kind", String(16), nullable=False, server_default="process"),  # or "container"
    Column("image", String(512), nullable=True),
    Column("image_digest", String(128), nullable=True),
    Column("containers", Text, nullable=True),  # JSON list of container names
    Column("created_by", String(255), nullable=True),  # who created it
)

# One row per materialization being built somewhere (build hash, platform, builder): whoever
# inserts it builds, the others wait and then reuse the result. The holder renews expires_at
# while it builds and deletes the row when done; a row past expires_at is a dead builder's,
# and the next one takes it over. Times are epoch seconds, as the holders' clocks tell them.
build_leases = Table(
    "build_leases",
    metadata,
    Column("build_hash", String(64), primary_key=True),
    Column("platform", String(64), primary_key=True),
    Column("builder", String(32), primary_key=True),
    Column("holder", String(64), nullable=False),  # a random id per take
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("building", String(512), nullable=False),  # what, for those waiting: NAME:VERSION
    Column("taken_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)

# Accounts of a team server. A user's role decides what their tokens may do.
users = Table(
    "users",
    metadata,
    Column("name", String(255), primary_key=True),
    Column("role", String(16), nullable=False),  # reader | contributor | admin
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Personal access tokens: only the sha256 of a token is kept, so the database never holds one.
tokens = Table(
    "tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(255), nullable=False),  # the owner's label for it
    Column("owner", String(255), ForeignKey("users.name"), nullable=False),
    Column("token_sha256", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("expires_at", DateTime(timezone=True), nullable=True),  # None: until revoked
    UniqueConstraint("token_sha256"),
    Index(None, "owner"),
)

# Append-only: every write, with who made it, in the write's own transaction.
audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("actor", String(255), nullable=False),
    Column("action", String(64), nullable=False),  # e.g. environment.register
    Column("object", String(512), nullable=False),  # e.g. NAME:VERSION
    Column("at", DateTime(timezone=True), nullable=False),
    Index(None, "at"),
)
