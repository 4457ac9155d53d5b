"""Inbound safety: every reported value kept, partial answers, the To-read inbox

* reported_values: the numbers a later number for the same nudge replaced, so no reported
  value is ever lost (the adherence record keeps the latest outcome and number).
* inbound_messages.needs_reading / read_at / read_by_id: texts the bot did not act on wait in
  the "To read" inbox until a person marks them read.
* Partial answers are the outcome "partial" in adherence_records.outcome (a string column):
  no schema change.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import coachbot.db

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reported_values",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("nudge_id", sa.Integer(), nullable=True),
        sa.Column("track", sa.String(length=20), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(length=20), nullable=True),
        sa.Column("is_proxy", sa.Boolean(), nullable=False),
        sa.Column("inbound_message_id", sa.Integer(), nullable=True),
        sa.Column("recorded_at", coachbot.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["nudge_id"], ["nudges.id"]),
        sa.ForeignKeyConstraint(["inbound_message_id"], ["inbound_messages.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_reported_values_patient_track",
        "reported_values",
        ["patient_id", "track", "recorded_at"],
        unique=False,
    )
    op.create_index("ix_reported_values_nudge_id", "reported_values", ["nudge_id"], unique=False)
    # Plain ADD COLUMN, not batch mode: batch would copy and drop inbound_messages, which
    # alerts and adherence records reference (see 0008).
    op.add_column(
        "inbound_messages",
        sa.Column("needs_reading", sa.Boolean(), server_default="0", nullable=False),
    )
    op.add_column(
        "inbound_messages",
        sa.Column("read_at", coachbot.db.UTCDateTime(timezone=True), nullable=True),
    )
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot add a constraint to an existing table, but it takes a column that
        # carries its own REFERENCES clause.
        op.execute(
            "ALTER TABLE inbound_messages ADD COLUMN read_by_id INTEGER REFERENCES staff_users (id)"
        )
    else:
        op.add_column("inbound_messages", sa.Column("read_by_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            "fk_inbound_messages_read_by_id_staff_users",
            "inbound_messages",
            "staff_users",
            ["read_by_id"],
            ["id"],
        )
    op.create_index(
        "ix_inbound_to_read", "inbound_messages", ["needs_reading", "read_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_inbound_to_read", table_name="inbound_messages")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint(
            "fk_inbound_messages_read_by_id_staff_users", "inbound_messages", type_="foreignkey"
        )
    # SQLite 3.35+ drops a column in place; one that carries a REFERENCES clause too.
    for column in ("read_by_id", "read_at", "needs_reading"):
        op.drop_column("inbound_messages", column)
    op.drop_index("ix_reported_values_nudge_id", table_name="reported_values")
    op.drop_index("ix_reported_values_patient_track", table_name="reported_values")
    op.drop_table("reported_values")
