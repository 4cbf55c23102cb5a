"""the phone app: wallet devices (public keys of phones that sign offline codes), pay numbers (the short number
under a pay code's QR), redemptions.device_id and the method device_code

Revision ID: 0014_devices
Revises: 0013

"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0014_devices'
down_revision = '0013'
branch_labels = None
depends_on = None

BIG = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('wallet_devices',
    sa.Column('id', BIG, autoincrement=True, nullable=False),
    sa.Column('user_id', BIG, nullable=False),
    sa.Column('wallet_account_id', BIG, nullable=False),
    sa.Column('kid', sa.String(length=32), nullable=False),
    sa.Column('alg', sa.String(length=8), nullable=False),
    sa.Column('public_jwk', sa.Text(), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_by', sa.String(length=80), nullable=True),
    sa.CheckConstraint("status IN ('active', 'revoked')", name=op.f('ck_wallet_devices_status')),
    sa.CheckConstraint("alg IN ('EdDSA', 'ES256')", name=op.f('ck_wallet_devices_alg')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_wallet_devices_user_id_users')),
    sa.ForeignKeyConstraint(['wallet_account_id'], ['accounts.id'],
                            name=op.f('fk_wallet_devices_wallet_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_wallet_devices')),
    sa.UniqueConstraint('kid', name=op.f('uq_wallet_devices_kid'))
    )
    with op.batch_alter_table('wallet_devices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_wallet_devices_user_id'), ['user_id'], unique=False)
    op.create_table('pay_numbers',
    sa.Column('id', BIG, autoincrement=True, nullable=False),
    sa.Column('number', sa.String(length=20), nullable=False),
    sa.Column('code', sa.Text(), nullable=False),
    sa.Column('wallet_account_id', BIG, nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    sa.ForeignKeyConstraint(['wallet_account_id'], ['accounts.id'],
                            name=op.f('fk_pay_numbers_wallet_account_id_accounts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pay_numbers')),
    sa.UniqueConstraint('number', name=op.f('uq_pay_numbers_number'))
    )
    with op.batch_alter_table('pay_numbers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pay_numbers_expires_at'), ['expires_at'], unique=False)
    with op.batch_alter_table('redemptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('device_id', BIG, nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_redemptions_device_id_wallet_devices'), 'wallet_devices',
                                    ['device_id'], ['id'])
        batch_op.drop_constraint(op.f('ck_redemptions_method'), type_='check')
        batch_op.create_check_constraint('method', "method IN ('wallet_code', 'card', 'device_code')")


def downgrade() -> None:
    with op.batch_alter_table('redemptions', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_redemptions_method'), type_='check')
        batch_op.create_check_constraint('method', "method IN ('wallet_code', 'card')")
        batch_op.drop_constraint(batch_op.f('fk_redemptions_device_id_wallet_devices'), type_='foreignkey')
        batch_op.drop_column('device_id')
    with op.batch_alter_table('pay_numbers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_pay_numbers_expires_at'))
    op.drop_table('pay_numbers')
    with op.batch_alter_table('wallet_devices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_wallet_devices_user_id'))
    op.drop_table('wallet_devices')
