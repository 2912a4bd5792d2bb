"""The newest Alembic revision of the registry schema: opening a registry upgrades to it.
Kept apart from schema.py so the SQLite fast path can read it without importing SQLAlchemy."""

SCHEMA_REVISION = "0012"
