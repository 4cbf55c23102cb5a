"""patrols (issue 16): posts, recurring series, shifts, sign-ups and attendance, used leader codes,
service records and certificates

Revision ID: 0010
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('patrol_posts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('org_unit_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('latitude_e6', sa.Integer(), nullable=False),
    sa.Column('longitude_e6', sa.Integer(), nullable=False),
    sa.Column('radius_m', sa.Integer(), nullable=False),
    sa.Column('sign_serial', sa.Integer(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.CheckConstraint('latitude_e6 BETWEEN -90000000 AND 90000000', name=op.f('ck_patrol_posts_latitude_range')),
    sa.CheckConstraint('longitude_e6 BETWEEN -180000000 AND 180000000', name=op.f('ck_patrol_posts_longitude_range')),
    sa.CheckConstraint('radius_m BETWEEN 10 AND 2000', name=op.f('ck_patrol_posts_radius_range')),
    sa.CheckConstraint('sign_serial >= 1', name=op.f('ck_patrol_posts_sign_serial_positive')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_patrol_posts_created_by_id_users')),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_units.id'], name=op.f('fk_patrol_posts_org_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patrol_posts'))
    )
    with op.batch_alter_table('patrol_posts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patrol_posts_org_unit_id'), ['org_unit_id'], unique=False)

    op.create_table('service_certificates',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('jti', sa.String(length=64), nullable=False),
    sa.Column('volunteer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('first_day', sa.Date(), nullable=False),
    sa.Column('last_day', sa.Date(), nullable=False),
    sa.Column('minutes', sa.Integer(), nullable=False),
    sa.Column('records', sa.Integer(), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('statement', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['volunteer_id'], ['users.id'], name=op.f('fk_service_certificates_volunteer_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_certificates')),
    sa.UniqueConstraint('jti', name=op.f('uq_service_certificates_jti'))
    )
    with op.batch_alter_table('service_certificates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_service_certificates_volunteer_id'), ['volunteer_id'], unique=False)

    op.create_table('service_records',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('volunteer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('activity', sa.String(length=12), nullable=False),
    sa.Column('source_ref', sa.String(length=60), nullable=False),
    sa.Column('org_unit_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('description', sa.String(length=200), nullable=False),
    sa.Column('service_day', sa.Date(), nullable=False),
    sa.Column('minutes', sa.Integer(), nullable=False),
    sa.Column('verified_by', sa.String(length=80), nullable=False),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("activity IN ('patrol', 'radar')", name=op.f('ck_service_records_activity')),
    sa.CheckConstraint('minutes > 0', name=op.f('ck_service_records_minutes_positive')),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_units.id'], name=op.f('fk_service_records_org_unit_id_org_units')),
    sa.ForeignKeyConstraint(['volunteer_id'], ['users.id'], name=op.f('fk_service_records_volunteer_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_service_records')),
    sa.UniqueConstraint('source_ref', name=op.f('uq_service_records_source_ref'))
    )
    with op.batch_alter_table('service_records', schema=None) as batch_op:
        batch_op.create_index('ix_service_records_volunteer_day', ['volunteer_id', 'service_day'], unique=False)

    op.create_table('patrol_series',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('post_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('start_minute', sa.Integer(), nullable=False),
    sa.Column('duration_minutes', sa.Integer(), nullable=False),
    sa.Column('weekdays', sa.Integer(), nullable=False),
    sa.Column('first_day', sa.Date(), nullable=False),
    sa.Column('last_day', sa.Date(), nullable=True),
    sa.Column('needed', sa.Integer(), nullable=False),
    sa.Column('beans_per_hour', sa.Integer(), nullable=False),
    sa.Column('insurance_required', sa.Boolean(), nullable=False),
    sa.Column('leader_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.CheckConstraint('beans_per_hour >= 0', name=op.f('ck_patrol_series_beans_per_hour_not_negative')),
    sa.CheckConstraint('duration_minutes BETWEEN 15 AND 720', name=op.f('ck_patrol_series_duration_range')),
    sa.CheckConstraint('needed BETWEEN 1 AND 500', name=op.f('ck_patrol_series_needed_range')),
    sa.CheckConstraint('start_minute BETWEEN 0 AND 1439', name=op.f('ck_patrol_series_start_minute_range')),
    sa.CheckConstraint('weekdays BETWEEN 1 AND 127', name=op.f('ck_patrol_series_weekdays_range')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_patrol_series_created_by_id_users')),
    sa.ForeignKeyConstraint(['leader_id'], ['users.id'], name=op.f('fk_patrol_series_leader_id_users')),
    sa.ForeignKeyConstraint(['post_id'], ['patrol_posts.id'], name=op.f('fk_patrol_series_post_id_patrol_posts')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patrol_series'))
    )
    with op.batch_alter_table('patrol_series', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patrol_series_post_id'), ['post_id'], unique=False)

    op.create_table('patrol_shifts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('post_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('series_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('needed', sa.Integer(), nullable=False),
    sa.Column('beans_per_hour', sa.Integer(), nullable=False),
    sa.Column('insurance_required', sa.Boolean(), nullable=False),
    sa.Column('leader_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('created_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.CheckConstraint("status IN ('open', 'cancelled')", name=op.f('ck_patrol_shifts_status')),
    sa.CheckConstraint('beans_per_hour >= 0', name=op.f('ck_patrol_shifts_beans_per_hour_not_negative')),
    sa.CheckConstraint('ends_at > starts_at', name=op.f('ck_patrol_shifts_ends_after_start')),
    sa.CheckConstraint('needed BETWEEN 1 AND 500', name=op.f('ck_patrol_shifts_needed_range')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_patrol_shifts_created_by_id_users')),
    sa.ForeignKeyConstraint(['leader_id'], ['users.id'], name=op.f('fk_patrol_shifts_leader_id_users')),
    sa.ForeignKeyConstraint(['post_id'], ['patrol_posts.id'], name=op.f('fk_patrol_shifts_post_id_patrol_posts')),
    sa.ForeignKeyConstraint(['series_id'], ['patrol_series.id'], name=op.f('fk_patrol_shifts_series_id_patrol_series')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patrol_shifts')),
    sa.UniqueConstraint('series_id', 'starts_at', name=op.f('uq_patrol_shifts_series_id_starts_at'))
    )
    with op.batch_alter_table('patrol_shifts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patrol_shifts_post_id'), ['post_id'], unique=False)
        batch_op.create_index('ix_patrol_shifts_starts_at', ['starts_at'], unique=False)

    op.create_table('patrol_signups',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('shift_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('volunteer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('signed_up_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('seen_version', sa.Integer(), nullable=False),
    sa.Column('withdrawn_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('checked_in_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('check_in_proof', sa.String(length=16), nullable=True),
    sa.Column('check_in_distance_m', sa.Integer(), nullable=True),
    sa.Column('checked_out_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('check_out_proof', sa.String(length=16), nullable=True),
    sa.Column('check_out_distance_m', sa.Integer(), nullable=True),
    sa.Column('recorded_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('minutes', sa.Integer(), nullable=True),
    sa.Column('beans', sa.BigInteger(), nullable=True),
    sa.Column('attendance', sa.String(length=24), nullable=True),
    sa.Column('hold_reason', sa.String(length=40), nullable=True),
    sa.Column('verified_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('transfer_key', sa.String(length=100), nullable=True),
    sa.CheckConstraint("attendance IS NULL OR attendance IN ('awaiting_verification', 'paid', 'recorded', 'refused')", name=op.f('ck_patrol_signups_attendance')),
    sa.CheckConstraint("check_in_proof IS NULL OR check_in_proof IN ('leader_code', 'post_sign', 'leader_manual')", name=op.f('ck_patrol_signups_check_in_proof')),
    sa.CheckConstraint("check_out_proof IS NULL OR check_out_proof IN ('leader_code', 'post_sign', 'leader_manual')", name=op.f('ck_patrol_signups_check_out_proof')),
    sa.CheckConstraint("status IN ('pending', 'signed_up', 'withdrawn', 'checked_in', 'checked_out', 'no_show')", name=op.f('ck_patrol_signups_status')),
    sa.CheckConstraint('beans IS NULL OR beans >= 0', name=op.f('ck_patrol_signups_beans_not_negative')),
    sa.CheckConstraint('minutes IS NULL OR minutes >= 0', name=op.f('ck_patrol_signups_minutes_not_negative')),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['users.id'], name=op.f('fk_patrol_signups_recorded_by_id_users')),
    sa.ForeignKeyConstraint(['shift_id'], ['patrol_shifts.id'], name=op.f('fk_patrol_signups_shift_id_patrol_shifts')),
    sa.ForeignKeyConstraint(['verified_by_id'], ['users.id'], name=op.f('fk_patrol_signups_verified_by_id_users')),
    sa.ForeignKeyConstraint(['volunteer_id'], ['users.id'], name=op.f('fk_patrol_signups_volunteer_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patrol_signups')),
    sa.UniqueConstraint('shift_id', 'volunteer_id', name=op.f('uq_patrol_signups_shift_id_volunteer_id')),
    sa.UniqueConstraint('transfer_key', name=op.f('uq_patrol_signups_transfer_key'))
    )
    with op.batch_alter_table('patrol_signups', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patrol_signups_volunteer_id'), ['volunteer_id'], unique=False)

    op.create_table('patrol_used_codes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('jti', sa.String(length=64), nullable=False),
    sa.Column('shift_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('volunteer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['shift_id'], ['patrol_shifts.id'], name=op.f('fk_patrol_used_codes_shift_id_patrol_shifts')),
    sa.ForeignKeyConstraint(['volunteer_id'], ['users.id'], name=op.f('fk_patrol_used_codes_volunteer_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patrol_used_codes')),
    sa.UniqueConstraint('jti', name=op.f('uq_patrol_used_codes_jti'))
    )
    with op.batch_alter_table('patrol_used_codes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patrol_used_codes_expires_at'), ['expires_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('patrol_used_codes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patrol_used_codes_expires_at'))

    op.drop_table('patrol_used_codes')
    with op.batch_alter_table('patrol_signups', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patrol_signups_volunteer_id'))

    op.drop_table('patrol_signups')
    with op.batch_alter_table('patrol_shifts', schema=None) as batch_op:
        batch_op.drop_index('ix_patrol_shifts_starts_at')
        batch_op.drop_index(batch_op.f('ix_patrol_shifts_post_id'))

    op.drop_table('patrol_shifts')
    with op.batch_alter_table('patrol_series', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patrol_series_post_id'))

    op.drop_table('patrol_series')
    with op.batch_alter_table('service_records', schema=None) as batch_op:
        batch_op.drop_index('ix_service_records_volunteer_day')

    op.drop_table('service_records')
    with op.batch_alter_table('service_certificates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_service_certificates_volunteer_id'))

    op.drop_table('service_certificates')
    with op.batch_alter_table('patrol_posts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patrol_posts_org_unit_id'))

    op.drop_table('patrol_posts')
