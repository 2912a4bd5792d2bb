"""Wheels stored in the workspace with ``kiln wheel add``.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "wheels",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("filename", sa.String(512), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_wheels"),
        sa.UniqueConstraint("sha256", name="uq_wheels_sha256"),
        sa.UniqueConstraint("filename", name="uq_wheels_filename"),
    )
    op.create_index("ix_wheels_name", "wheels", ["name"])


def downgrade() -> None:
    op.drop_table("wheels")
