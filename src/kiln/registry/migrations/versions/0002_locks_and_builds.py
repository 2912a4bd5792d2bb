"""Locks (exact resolved package sets) and build records.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "locks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("build_hash", sa.String(64), nullable=False),
        sa.Column("platform", sa.String(64), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("lock_digest", sa.String(64), nullable=False),
        sa.Column("lock_format", sa.String(32), nullable=False),
        sa.Column("lock_text", sa.Text(), nullable=False),
        sa.Column("packages", sa.Text(), nullable=False),
        sa.Column("resolver", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_locks"),
        sa.UniqueConstraint(
            "build_hash", "platform", "generation", name="uq_locks_build_hash_platform_generation"
        ),
    )
    op.create_table(
        "builds",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("build_hash", sa.String(64), nullable=False),
        sa.Column("platform", sa.String(64), nullable=False),
        sa.Column("lock_digest", sa.String(64), nullable=True),
        sa.Column("builder", sa.String(32), nullable=False),
        sa.Column("machine", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("log_digest", sa.String(64), nullable=True),
        sa.Column("tool_versions", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_builds"),
    )
    op.create_index("ix_builds_build_hash_platform", "builds", ["build_hash", "platform"])


def downgrade() -> None:
    op.drop_table("builds")
    op.drop_table("locks")
