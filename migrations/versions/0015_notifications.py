"""notifications: the outbox (inbox entries) and their deliveries by channel; the live stream carries them

Revision ID: 0015n
Revises: 0014n
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015n"
down_revision = "0014n"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table('notifications',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('user_id', ID, nullable=False),
    sa.Column('topic', sa.String(length=20), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('body', sa.String(length=500), nullable=False),
    sa.Column('link', sa.String(length=200), nullable=True),
    sa.Column('subject', sa.String(length=60), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=True),
    sa.Column('urgent', sa.Boolean(), nullable=False),
    sa.Column('dedupe_key', sa.String(length=120), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notifications_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_notifications_dedupe_key'))
    )
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.create_index('ix_notifications_user', ['user_id', 'id'], unique=False)
        batch_op.create_index('ix_notifications_created_at', ['created_at'], unique=False)
    op.create_table('notification_deliveries',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('notification_id', ID, nullable=False),
    sa.Column('channel', sa.String(length=8), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.String(length=60), nullable=True),
    sa.CheckConstraint("channel IN ('inbox', 'live', 'sms')", name=op.f('ck_notification_deliveries_channel')),
    sa.CheckConstraint("state IN ('pending', 'sent', 'failed', 'skipped')",
                       name=op.f('ck_notification_deliveries_state')),
    sa.ForeignKeyConstraint(['notification_id'], ['notifications.id'],
                            name=op.f('fk_notification_deliveries_notification_id_notifications')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_deliveries')),
    sa.UniqueConstraint('notification_id', 'channel', name=op.f('uq_notification_deliveries_notification_id_channel'))
    )
    with op.batch_alter_table('notification_deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_notification_deliveries_due', ['state', 'next_attempt_at'], unique=False)
    with op.batch_alter_table('radar_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('notification_id', sa.BigInteger(), nullable=True))
        batch_op.drop_constraint(op.f('ck_radar_events_kind'), type_='check')
        batch_op.create_check_constraint('kind', "kind IN ('notice', 'notice_closed', 'payment', 'award', "
                                                 "'notification')")


def downgrade() -> None:
    op.execute("DELETE FROM radar_events WHERE kind = 'notification'")
    with op.batch_alter_table('radar_events', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_radar_events_kind'), type_='check')
        batch_op.create_check_constraint('kind', "kind IN ('notice', 'notice_closed', 'payment', 'award')")
        batch_op.drop_column('notification_id')
    with op.batch_alter_table('notification_deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_notification_deliveries_due')
    op.drop_table('notification_deliveries')
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_created_at')
        batch_op.drop_index('ix_notifications_user')
    op.drop_table('notifications')
