"""my data: erasure requests; the security log lets an erasure blank a row's personal fields (and nothing else)

Revision ID: 0013
Revises: 0009

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('erasure_requests',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('completed_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('returned_beans', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.CheckConstraint("status IN ('requested', 'completed')", name=op.f('ck_erasure_requests_status')),
    sa.CheckConstraint('returned_beans >= 0', name=op.f('ck_erasure_requests_returned_nonneg')),
    sa.ForeignKeyConstraint(['completed_by_id'], ['users.id'], name=op.f('fk_erasure_requests_completed_by_id_users')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_erasure_requests_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_erasure_requests'))
    )
    with op.batch_alter_table('erasure_requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_erasure_requests_user_id'), ['user_id'], unique=False)
    _security_log_trigger(allow_scrub=True)


# An erasure may blank username, source and detail of a security-log row; id, time, kind, user id and actor stay,
# and any other UPDATE or a DELETE is still refused by the database.
_SCRUB = ("NEW.id = OLD.id AND NEW.at = OLD.at AND NEW.kind = OLD.kind AND NEW.created_at = OLD.created_at "
          "AND NEW.user_id {same} OLD.user_id AND NEW.actor {same} OLD.actor "
          "AND NEW.username IS NULL AND NEW.source IS NULL AND NEW.detail = '{{}}'")


def _security_log_trigger(*, allow_scrub: bool) -> None:
    if op.get_bind().dialect.name == "postgresql":
        check = (f"IF TG_OP = 'UPDATE' AND {_SCRUB.format(same='IS NOT DISTINCT FROM')} THEN RETURN NEW; END IF;"
                 if allow_scrub else "")
        op.execute(f"""
            CREATE OR REPLACE FUNCTION security_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN {check} RAISE EXCEPTION 'security_events is append-only'; END $$""")
    else:
        when = f" WHEN NOT ({_SCRUB.format(same='IS')})" if allow_scrub else ""
        op.execute("DROP TRIGGER IF EXISTS security_events_no_update")
        op.execute(f"CREATE TRIGGER security_events_no_update BEFORE UPDATE ON security_events{when} "
                   "BEGIN SELECT RAISE(ABORT, 'security_events is append-only'); END")


def downgrade() -> None:
    _security_log_trigger(allow_scrub=False)
    with op.batch_alter_table('erasure_requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_erasure_requests_user_id'))
    op.drop_table('erasure_requests')
