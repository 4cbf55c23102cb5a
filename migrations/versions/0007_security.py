"""security: throttling, security event log (issue 8)

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "security_events",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("username", sa.String(length=80), nullable=True),
        sa.Column("source", sa.String(length=64), nullable=True),
        sa.Column("actor", sa.String(length=80), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("(CURRENT_TIMESTAMP)"),
                  nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_events")),
    )
    op.create_index("ix_security_events_kind_at", "security_events", ["kind", "at"], unique=False)
    op.create_index("ix_security_events_source_at", "security_events", ["source", "at"], unique=False)
    op.create_index("ix_security_events_user_id_at", "security_events", ["user_id", "at"], unique=False)
    op.create_table(
        "rate_counters",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("bucket", sa.String(length=120), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_counters")),
        sa.UniqueConstraint("bucket", "window_start", name=op.f("uq_rate_counters_bucket_window_start")),
    )
    # the security log is append-only: the database itself refuses UPDATE and DELETE
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""
            CREATE FUNCTION security_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'security_events is append-only'; END $$""")
        op.execute("CREATE TRIGGER security_events_no_update BEFORE UPDATE OR DELETE ON security_events "
                   "FOR EACH ROW EXECUTE FUNCTION security_events_append_only()")
    else:
        for what in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER security_events_no_{what.lower()} BEFORE {what} ON security_events "
                       "BEGIN SELECT RAISE(ABORT, 'security_events is append-only'); END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS security_events_no_update ON security_events")
        op.execute("DROP FUNCTION IF EXISTS security_events_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS security_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS security_events_no_delete")
    op.drop_table("rate_counters")
    op.drop_index("ix_security_events_user_id_at", table_name="security_events")
    op.drop_index("ix_security_events_source_at", table_name="security_events")
    op.drop_index("ix_security_events_kind_at", table_name="security_events")
    op.drop_table("security_events")
