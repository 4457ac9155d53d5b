"""Caregivers as consented participants, the close-watch weeks, daily checks, media samples

A caregiver becomes a record with its own consent and links to one or more patients. The
caregiver numbers already on patients become caregivers *pending consent*, not invited: they
were given before caregivers could be texted, so nothing is sent to them until a clinician
invites them from the patient's page.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import coachbot.db

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_AT = coachbot.db.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "caregivers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("first_name", sa.String(length=80), nullable=False),
        sa.Column("phone_e164", sa.String(length=16), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("quiet_start", sa.Time(), nullable=True),
        sa.Column("quiet_end", sa.Time(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("invite_due_at", _AT, nullable=True),
        sa.Column("invited_at", _AT, nullable=True),
        sa.Column("opted_in_at", _AT, nullable=True),
        sa.Column("opted_out_at", _AT, nullable=True),
        sa.Column("created_at", _AT, nullable=False),
        sa.Column("updated_at", _AT, nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("phone_e164"),
    )
    op.create_index("ix_caregivers_invite_due_at", "caregivers", ["invite_due_at"])
    op.create_table(
        "caregiver_links",
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("caregiver_id", sa.Integer(), nullable=False),
        sa.Column("baseline_score", sa.Integer(), nullable=True),
        sa.Column("linked_at", _AT, nullable=False),
        sa.Column("linked_by", sa.String(length=120), nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["caregiver_id"], ["caregivers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("patient_id", "caregiver_id"),
    )
    op.create_index("ix_caregiver_links_caregiver_id", "caregiver_links", ["caregiver_id"])
    op.create_table(
        "caregiver_checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=False),
        sa.Column("caregiver_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("local_date", sa.Date(), nullable=False),
        sa.Column("program_version", sa.Integer(), nullable=True),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("due_at", _AT, nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("sent_at", _AT, nullable=True),
        sa.Column("followup_sent_at", _AT, nullable=True),
        sa.Column("answered_at", _AT, nullable=True),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("concern", sa.String(length=10), nullable=True),
        sa.Column("inbound_message_id", sa.Integer(), nullable=True),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.Column("created_at", _AT, nullable=False),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["caregiver_id"], ["caregivers.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["inbound_message_id"], ["inbound_messages.id"]),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "patient_id", "caregiver_id", "kind", "local_date", name="uq_caregiver_checks_day"
        ),
    )
    op.create_index("ix_caregiver_checks_state_due", "caregiver_checks", ["state", "due_at"])
    op.create_table(
        "media_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("inbound_message_id", sa.Integer(), nullable=False),
        sa.Column("media_index", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("caregiver_id", sa.Integer(), nullable=True),
        sa.Column("media_url", sa.String(length=500), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("content_type", sa.String(length=60), nullable=True),
        sa.Column("size_bytes", sa.Integer(), nullable=True),
        sa.Column("storage_key", sa.String(length=200), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=200), nullable=True),
        sa.Column("received_at", _AT, nullable=False),
        sa.Column("local_date", sa.Date(), nullable=True),
        sa.Column("stored_at", _AT, nullable=True),
        sa.ForeignKeyConstraint(["inbound_message_id"], ["inbound_messages.id"]),
        sa.ForeignKeyConstraint(["patient_id"], ["patients.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["caregiver_id"], ["caregivers.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("inbound_message_id", "media_index", name="uq_media_samples_media"),
    )
    op.create_index("ix_media_samples_state", "media_samples", ["state", "received_at"])
    op.create_index("ix_media_samples_patient", "media_samples", ["patient_id", "received_at"])

    # Plain ADD COLUMNs, nullable: no batch copy of patients or inbound_messages (see 0008).
    op.add_column("patients", sa.Column("close_watch_from", sa.Date(), nullable=True))
    op.add_column("patients", sa.Column("close_watch_days", sa.Integer(), nullable=True))
    op.add_column("inbound_messages", sa.Column("caregiver_id", sa.Integer(), nullable=True))

    # Caregiver numbers given before this release: one caregiver per number (named
    # "Caregiver", in the first patient's language and zone), pending consent, not invited.
    op.execute(
        "INSERT INTO caregivers (first_name, phone_e164, language, timezone, status, "
        "created_at, updated_at) "
        "SELECT 'Caregiver', p.caregiver_phone_e164, p.language, p.timezone, "
        "'pending-consent', p.updated_at, p.updated_at FROM patients AS p "
        "WHERE p.caregiver_phone_e164 IS NOT NULL AND p.id = ("
        "SELECT MIN(q.id) FROM patients AS q WHERE q.caregiver_phone_e164 = p.caregiver_phone_e164)"
    )
    op.execute(
        "INSERT INTO caregiver_links (patient_id, caregiver_id, linked_at, linked_by) "
        "SELECT p.id, c.id, p.updated_at, 'migrated' FROM patients AS p "
        "JOIN caregivers AS c ON c.phone_e164 = p.caregiver_phone_e164"
    )
    # The caregiver's number lives on the caregiver now; the column on patients goes, so
    # nothing can read a number that no longer says who consented. Plain DROP COLUMN
    # (SQLite >= 3.35), its index first.
    op.drop_index("ix_patients_caregiver_phone_e164", table_name="patients")
    op.drop_column("patients", "caregiver_phone_e164")


def downgrade() -> None:
    # The column comes back with each patient's first caregiver's number (their consent is
    # lost with the caregivers table: a downgraded install texts no caregiver anyway).
    op.add_column(
        "patients", sa.Column("caregiver_phone_e164", sa.String(length=16), nullable=True)
    )
    op.create_index("ix_patients_caregiver_phone_e164", "patients", ["caregiver_phone_e164"])
    op.execute(
        "UPDATE patients SET caregiver_phone_e164 = (SELECT c.phone_e164 FROM caregivers AS c "
        "JOIN caregiver_links AS l ON l.caregiver_id = c.id WHERE l.patient_id = patients.id "
        "ORDER BY l.linked_at, c.id LIMIT 1)"
    )
    # Plain DROP COLUMNs, not batch mode (see 0012).
    op.drop_column("inbound_messages", "caregiver_id")
    op.drop_column("patients", "close_watch_days")
    op.drop_column("patients", "close_watch_from")
    op.drop_index("ix_media_samples_patient", table_name="media_samples")
    op.drop_index("ix_media_samples_state", table_name="media_samples")
    op.drop_table("media_samples")
    op.drop_index("ix_caregiver_checks_state_due", table_name="caregiver_checks")
    op.drop_table("caregiver_checks")
    op.drop_index("ix_caregiver_links_caregiver_id", table_name="caregiver_links")
    op.drop_table("caregiver_links")
    op.drop_index("ix_caregivers_invite_due_at", table_name="caregivers")
    op.drop_table("caregivers")
