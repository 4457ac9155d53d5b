"""dispatch engine tables

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import coachbot.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("track_schedules", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phases", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("is_custom", sa.Boolean(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("nudges", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rendered_body", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("segments", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("resent", sa.Boolean(), server_default="0", nullable=False))
    op.create_table(
        "program_defaults",
        sa.Column("track", sa.String(length=20), nullable=False),
        sa.Column("local_times", sa.String(length=200), nullable=False),
        sa.Column("days_of_week", sa.String(length=7), nullable=False),
        sa.Column("phases", sa.String(length=200), nullable=True),
        sa.Column("updated_at", coachbot.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("track"),
    )
    op.create_table(
        "dispatch_config",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.Time(), nullable=False),
        sa.Column("window_end", sa.Time(), nullable=False),
        sa.Column("daily_cap", sa.Integer(), nullable=False),
        sa.Column("max_concurrency", sa.Integer(), nullable=False),
        sa.Column("updated_at", coachbot.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "sender_paces",
        sa.Column("sender", sa.String(length=40), nullable=False),
        sa.Column("segments_per_second", sa.Float(), nullable=False),
        sa.Column("updated_at", coachbot.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("sender"),
    )


def downgrade() -> None:
    op.drop_table("sender_paces")
    op.drop_table("dispatch_config")
    op.drop_table("program_defaults")
    with op.batch_alter_table("nudges", schema=None) as batch_op:
        batch_op.drop_column("resent")
        batch_op.drop_column("segments")
        batch_op.drop_column("rendered_body")
    with op.batch_alter_table("track_schedules", schema=None) as batch_op:
        batch_op.drop_column("is_custom")
        batch_op.drop_column("phases")
