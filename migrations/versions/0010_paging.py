"""On-call paging: staff mobile numbers, the on-call rota, pages and acknowledgements

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import coachbot.db

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN plus a unique index (not a UNIQUE column constraint, which SQLite
    # cannot add to an existing table): no batch copy of staff_users.
    op.add_column("staff_users", sa.Column("phone_e164", sa.String(length=16), nullable=True))
    op.create_index("ix_staff_users_phone_e164", "staff_users", ["phone_e164"], unique=True)
    op.create_table(
        "oncall_overrides",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("primary_id", sa.Integer(), nullable=False),
        sa.Column("backup_id", sa.Integer(), nullable=True),
        sa.Column("set_at", coachbot.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("set_by", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(["primary_id"], ["staff_users.id"]),
        sa.ForeignKeyConstraint(["backup_id"], ["staff_users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "oncall_shifts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("start_time", sa.Time(), nullable=False),
        sa.Column("end_time", sa.Time(), nullable=False),
        sa.Column("primary_id", sa.Integer(), nullable=False),
        sa.Column("backup_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", coachbot.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(["primary_id"], ["staff_users.id"]),
        sa.ForeignKeyConstraint(["backup_id"], ["staff_users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "pages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("recipient_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=10), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("tries", sa.Integer(), nullable=False),
        sa.Column("provider_sid", sa.String(length=64), nullable=True),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.Column("created_at", coachbot.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", coachbot.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("sent_at", coachbot.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"]),
        sa.ForeignKeyConstraint(["recipient_id"], ["staff_users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("alert_id", "attempt", "recipient_id", "channel", name="uq_pages_key"),
    )
    op.create_index("ix_pages_alert_id", "pages", ["alert_id"], unique=False)
    op.create_index("ix_pages_state", "pages", ["state"], unique=False)
    op.create_index(
        "ix_pages_recipient_created", "pages", ["recipient_id", "created_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_pages_recipient_created", table_name="pages")
    op.drop_index("ix_pages_state", table_name="pages")
    op.drop_index("ix_pages_alert_id", table_name="pages")
    op.drop_table("pages")
    op.drop_table("oncall_shifts")
    op.drop_table("oncall_overrides")
    op.drop_index("ix_staff_users_phone_e164", table_name="staff_users")
    # A plain DROP COLUMN, not batch mode: batch would copy and drop staff_users, which
    # every patient, alert and session row points at (see 0008).
    op.drop_column("staff_users", "phone_e164")
