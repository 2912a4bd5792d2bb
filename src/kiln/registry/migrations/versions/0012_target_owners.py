"""Who named a compute target (`kiln target add`): on a team server a contributor replaces or
removes only the targets they named (an admin any), as with environments and runs.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("compute_targets") as batch:
        batch.add_column(sa.Column("created_by", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("compute_targets") as batch:
        batch.drop_column("created_by")
