"""patients.welcome_due_at: a welcome held back by quiet hours or the send window

The welcome that asks for YES goes at once only when the patient's local time allows it;
otherwise the first permitted instant is stored here and the clock tick sends it then.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import coachbot.db

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("welcome_due_at", coachbot.db.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index("ix_patients_welcome_due_at", ["welcome_due_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_patients_welcome_due_at", table_name="patients")
    # A plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+), not batch mode: batch would copy
    # and drop the patients table, and with foreign keys on, dropping it cascades to every
    # patient's schedules and homework.
    op.drop_column("patients", "welcome_due_at")
