"""index outbound messages by recipient and time, for the reply-loop guard

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_outbound_to_created", "outbound_messages", ["to_e164", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_outbound_to_created", table_name="outbound_messages")
