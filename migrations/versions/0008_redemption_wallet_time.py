"""redemptions: index (wallet_account_id, requested_at) for the daily limit summed on every redemption

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_redemptions_wallet_time", "redemptions", ["wallet_account_id", "requested_at"])
    # the new index's leading column serves every lookup the single-column one did
    op.drop_index("ix_redemptions_wallet_account_id", table_name="redemptions")


def downgrade() -> None:
    op.create_index("ix_redemptions_wallet_account_id", "redemptions", ["wallet_account_id"])
    op.drop_index("ix_redemptions_wallet_time", table_name="redemptions")
