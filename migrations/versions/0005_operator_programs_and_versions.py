"""operator programs and versions

The single programme that `program_defaults` described becomes programme "standard",
version 1: its stored track defaults where an operator changed them, the built-in ones
(snapshotted below as they were at this revision) otherwise. Every existing patient follows
"standard" because a patient without an assignment row does.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa
from alembic import op

import coachbot.db

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# track -> (times, reply window minutes, quiet policy, follow-up): coachbot.domain.program
# at this revision. A snapshot, so later code changes never rewrite history.
_BUILT_IN = {
    "sleep": ("08:30", 600, "defer", "once"),
    "exercise": ("10:00", 600, "defer", "once"),
    "diet": ("12:00", 480, "defer", "once"),
    "mindfulness": ("17:00", 240, "skip", "once"),
    "rehab": ("15:00", 360, "defer", "once"),
    "checkin": ("09:00", 360, "defer", "none"),
}


def upgrade() -> None:
    programs = op.create_table(
        "programs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("created_at", coachbot.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", coachbot.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    versions = op.create_table(
        "program_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("settings_json", sa.Text(), nullable=False),
        sa.Column("change_summary", sa.String(length=500), nullable=False),
        sa.Column("restored_from", sa.Integer(), nullable=True),
        sa.Column("created_at", coachbot.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("program_id", "version", name="uq_program_version"),
    )
    op.create_table(
        "program_assignments",
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("program_id", sa.Integer(), nullable=False),
        sa.Column("assigned_at", coachbot.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("assigned_by", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"]),
        sa.PrimaryKeyConstraint("patient_id"),
    )
    with op.batch_alter_table("program_assignments", schema=None) as batch_op:
        batch_op.create_index("ix_program_assignments_program_id", ["program_id"], unique=False)
    op.create_table(
        "global_settings",
        sa.Column("key", sa.String(length=60), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("updated_at", coachbot.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=120), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )

    connection = op.get_bind()
    stored = {
        row.track: row
        for row in connection.execute(
            sa.text("SELECT track, local_times, days_of_week, phases FROM program_defaults")
        )
    }
    tracks = {}
    for track, (times, reply_minutes, quiet, followup) in _BUILT_IN.items():
        row = stored.get(track)
        tracks[track] = {
            "times": row.local_times if row else times,
            "days": row.days_of_week if row else "0123456",
            "phases": row.phases if row else None,
            "reply_window_minutes": reply_minutes,
            "followup": followup,
            "quiet_policy": quiet,
        }
    now = dt.datetime.now(dt.UTC)
    op.bulk_insert(
        programs,
        [
            {
                "id": 1,
                "name": "standard",
                "description": "The programme every patient followed before programmes existed.",
                "current_version": 1,
                "created_at": now,
                "updated_at": now,
            }
        ],
    )
    op.bulk_insert(
        versions,
        [
            {
                "program_id": 1,
                "version": 1,
                "settings_json": json.dumps({"tracks": tracks}, sort_keys=True),
                "change_summary": "created from the programme defaults by migration 0005",
                "restored_from": None,
                "created_at": now,
                "created_by": "migration",
            }
        ],
    )
    if connection.dialect.name == "postgresql":
        # The explicit id above leaves the sequence behind; the next programme must not clash.
        connection.execute(sa.text("SELECT setval(pg_get_serial_sequence('programs', 'id'), 1)"))


def downgrade() -> None:
    op.drop_table("global_settings")
    with op.batch_alter_table("program_assignments", schema=None) as batch_op:
        batch_op.drop_index("ix_program_assignments_program_id")
    op.drop_table("program_assignments")
    op.drop_table("program_versions")
    op.drop_table("programs")
