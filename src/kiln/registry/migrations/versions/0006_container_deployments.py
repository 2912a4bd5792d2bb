"""Containerised deployments: what kind of service a deployment is, and for a container
deployment the image and containers of the generation that serves.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="process"))
        batch.add_column(sa.Column("image", sa.String(512), nullable=True))
        batch.add_column(sa.Column("image_digest", sa.String(128), nullable=True))
        batch.add_column(sa.Column("containers", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("deployments") as batch:
        for column in ("containers", "image_digest", "image", "kind"):
            batch.drop_column(column)
