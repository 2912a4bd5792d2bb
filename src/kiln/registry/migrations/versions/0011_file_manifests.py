"""A run's snapshot and outputs, and a folder model, on a team server: the sha256 of the
manifest (path, sha256, size, mode of each file) the server checked against the artifact store,
so any machine can fetch and verify them (kiln/filetrees.py).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("snapshot_manifest", sa.String(64), nullable=True))
        batch.add_column(sa.Column("outputs_manifest", sa.String(64), nullable=True))
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("manifest", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.drop_column("manifest")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("outputs_manifest")
        batch.drop_column("snapshot_manifest")
