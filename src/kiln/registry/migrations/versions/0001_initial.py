"""Environment names, versions and tags.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "environment_names",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_environment_names"),
    )
    op.create_table(
        "environment_versions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("version_number", sa.Integer(), nullable=True),
        sa.Column("definition_digest", sa.String(64), nullable=False),
        sa.Column("build_hash", sa.String(64), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["name"],
            ["environment_names.name"],
            name="fk_environment_versions_name_environment_names",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_environment_versions"),
        sa.UniqueConstraint("name", "version", name="uq_environment_versions_name_version"),
    )
    op.create_index(
        "ix_environment_versions_name_definition_digest",
        "environment_versions",
        ["name", "definition_digest"],
    )
    op.create_index("ix_environment_versions_build_hash", "environment_versions", ["build_hash"])
    op.create_table(
        "environment_tags",
        sa.Column("version_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["environment_versions.id"],
            name="fk_environment_tags_version_id_environment_versions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("version_id", "key", name="pk_environment_tags"),
    )
    op.create_index("ix_environment_tags_key_value", "environment_tags", ["key", "value"])


def downgrade() -> None:
    op.drop_table("environment_tags")
    op.drop_table("environment_versions")
    op.drop_table("environment_names")
