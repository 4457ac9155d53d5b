"""Consent by phone number: the suppression list, the consent ledger, who paused a patient

Numbers of patients already opted out are put on the suppression list (with a ledger row
saying so), so the rule "nothing goes to a number that texted STOP" holds from the upgrade on.
The ledger is append-only in the database too, as the audit log (0002).

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import coachbot.db

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "suppressed_numbers",
        sa.Column("number_e164", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("suppressed_at", coachbot.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("number_e164"),
    )
    op.create_table(
        "consent_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", coachbot.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("number_e164", sa.String(length=32), nullable=True),
        sa.Column("patient_id", sa.Integer(), nullable=True),
        sa.Column("event", sa.String(length=40), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=True),
        sa.Column("actor", sa.String(length=120), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_consent_events_patient_at", "consent_events", ["patient_id", "at"])
    op.create_index("ix_consent_events_number_at", "consent_events", ["number_e164", "at"])
    # A plain ADD COLUMN: SQLite supports it, and batch mode would copy the patients table.
    op.add_column("patients", sa.Column("paused_by", sa.String(length=20), nullable=True))
    # Who paused the patients paused today, from the audit log: the latest of a revocation in
    # their own words (only they may restart) and a clinician's pause; neither means an
    # invalid-number code paused them (the system).
    op.execute(
        "UPDATE patients SET paused_by = CASE ("
        "SELECT a.action FROM audit_log AS a WHERE a.patient_id = patients.id "
        "AND a.action IN ('consent.revocation_pause', 'patient.pause') "
        "ORDER BY a.at DESC, a.id DESC LIMIT 1) "
        "WHEN 'consent.revocation_pause' THEN 'patient' "
        "WHEN 'patient.pause' THEN 'clinician' ELSE 'system' END "
        "WHERE status = 'paused'"
    )

    # Existing opt-outs become suppressed numbers, so no send path can reach them after the
    # upgrade; the ledger says where each row came from.
    op.execute(
        "INSERT INTO suppressed_numbers (number_e164, source, patient_id, suppressed_at) "
        "SELECT phone_e164, 'migrated', id, COALESCE(opted_out_at, updated_at) "
        "FROM patients WHERE status = 'opted-out'"
    )
    op.execute(
        "INSERT INTO consent_events (at, number_e164, patient_id, event, source, actor, text) "
        "SELECT suppressed_at, number_e164, patient_id, 'suppression_added', 'migrated', "
        "'system', NULL FROM suppressed_numbers"
    )

    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER consent_events_no_{verb.lower()} BEFORE {verb} ON consent_events "
                "BEGIN SELECT RAISE(ABORT, 'consent_events is append-only'); END"
            )
    else:
        op.execute(
            "CREATE FUNCTION consent_events_refuse_change() RETURNS trigger AS $$ "
            "BEGIN RAISE EXCEPTION 'consent_events is append-only'; END; $$ LANGUAGE plpgsql"
        )
        op.execute(
            "CREATE TRIGGER consent_events_append_only BEFORE UPDATE OR DELETE ON consent_events "
            "FOR EACH ROW EXECUTE FUNCTION consent_events_refuse_change()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER consent_events_no_update")
        op.execute("DROP TRIGGER consent_events_no_delete")
    else:
        op.execute("DROP TRIGGER consent_events_append_only ON consent_events")
        op.execute("DROP FUNCTION consent_events_refuse_change()")
    # A plain DROP COLUMN, not batch mode (see 0008: batch would drop and copy patients).
    op.drop_column("patients", "paused_by")
    op.drop_index("ix_consent_events_number_at", table_name="consent_events")
    op.drop_index("ix_consent_events_patient_at", table_name="consent_events")
    op.drop_table("consent_events")
    op.drop_table("suppressed_numbers")
