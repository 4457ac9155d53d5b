"""dashboard indexes: covering indexes for the patients list and the patient page

The list aggregates each page's nudges over 30 days and their answers; with every column
those reads touch in the index, SQLite answers from the index alone instead of visiting a
table row per nudge (EXPLAIN QUERY PLAN: "USING COVERING INDEX").

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("nudges", schema=None) as batch_op:
        batch_op.drop_index("ix_nudges_patient_due")
        batch_op.create_index(
            "ix_nudges_patient_due",
            ["patient_id", "due_at", "track", "state", "reply_window_ends_at", "occurrence_key"],
            unique=False,
        )
    with op.batch_alter_table("adherence_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_adherence_nudge_outcome", ["nudge_id", "outcome", "recorded_at"], unique=False
        )
        batch_op.create_index(
            "ix_adherence_patient_outcome",
            ["patient_id", "outcome", "recorded_at", "track"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("adherence_records", schema=None) as batch_op:
        batch_op.drop_index("ix_adherence_patient_outcome")
        batch_op.drop_index("ix_adherence_nudge_outcome")
    with op.batch_alter_table("nudges", schema=None) as batch_op:
        batch_op.drop_index("ix_nudges_patient_due")
        batch_op.create_index("ix_nudges_patient_due", ["patient_id", "due_at"], unique=False)
