"""Each staff member's own time zone for the times the dashboard shows (NULL: the clinic's)

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
    # A plain ADD COLUMN, nullable: no batch copy of staff_users, no default to backfill.
    op.add_column("staff_users", sa.Column("timezone", sa.String(length=64), nullable=True))


def downgrade() -> None:
    # A plain DROP COLUMN, not batch mode: batch would copy and drop staff_users, which
    # every patient, alert and session row points at (see 0008).
    op.drop_column("staff_users", "timezone")
