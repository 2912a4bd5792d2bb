"""The image a run ran in: its reference and manifest digest (a container run's reproduce
runs that exact digest).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("image_reference", sa.String(512), nullable=True))
        batch.add_column(sa.Column("image_digest", sa.String(80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("image_digest")
        batch.drop_column("image_reference")
