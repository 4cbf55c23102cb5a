"""radar (issue 15): notices, their versions and areas, answers, public reports, photos, preferences, events

Revision ID: 0009
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('radar_notices',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('officer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('budget_org_unit_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('bounty', sa.BigInteger(), nullable=False),
    sa.Column('bounty_paid', sa.BigInteger(), nullable=False),
    sa.Column('hold_key', sa.String(length=100), nullable=True),
    sa.Column('hold_seq', sa.Integer(), nullable=False),
    sa.Column('lat_e6', sa.Integer(), nullable=True),
    sa.Column('lng_e6', sa.Integer(), nullable=True),
    sa.Column('radius_m', sa.Integer(), nullable=True),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('close_reason', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.CheckConstraint("kind IN ('寻人', '寻物', '协查', '求助', '安全提示')", name=op.f('ck_radar_notices_kind')),
    sa.CheckConstraint("status IN ('open', 'closed', 'expired')", name=op.f('ck_radar_notices_status')),
    sa.CheckConstraint('(lat_e6 IS NULL) = (lng_e6 IS NULL) AND (lat_e6 IS NULL) = (radius_m IS NULL)', name=op.f('ck_radar_notices_circle_whole')),
    sa.CheckConstraint('bounty = 0 OR budget_org_unit_id IS NOT NULL', name=op.f('ck_radar_notices_bounty_has_budget')),
    sa.CheckConstraint('bounty >= 0 AND bounty_paid >= 0 AND bounty_paid <= bounty', name=op.f('ck_radar_notices_bounty_within')),
    sa.CheckConstraint('radius_m IS NULL OR (radius_m > 0 AND radius_m <= 50000)', name=op.f('ck_radar_notices_radius_range')),
    sa.ForeignKeyConstraint(['budget_org_unit_id'], ['org_units.id'], name=op.f('fk_radar_notices_budget_org_unit_id_org_units')),
    sa.ForeignKeyConstraint(['closed_by_id'], ['users.id'], name=op.f('fk_radar_notices_closed_by_id_users')),
    sa.ForeignKeyConstraint(['officer_id'], ['users.id'], name=op.f('fk_radar_notices_officer_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_radar_notices')),
    sa.UniqueConstraint('hold_key', name=op.f('uq_radar_notices_hold_key'))
    )
    with op.batch_alter_table('radar_notices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_radar_notices_ends_at'), ['ends_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_radar_notices_officer_id'), ['officer_id'], unique=False)

    op.create_table('radar_preferences',
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('kinds', sa.String(length=100), nullable=False),
    sa.Column('quiet_from', sa.Integer(), nullable=True),
    sa.Column('quiet_to', sa.Integer(), nullable=True),
    sa.CheckConstraint('(quiet_from IS NULL) = (quiet_to IS NULL)', name=op.f('ck_radar_preferences_quiet_whole')),
    sa.CheckConstraint('quiet_from IS NULL OR (quiet_from >= 0 AND quiet_from < 1440 AND quiet_to >= 0 AND quiet_to < 1440)', name=op.f('ck_radar_preferences_quiet_range')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_radar_preferences_user_id_users')),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_radar_preferences'))
    )
    op.create_table('radar_answers',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('notice_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('volunteer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('place', sa.String(length=200), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=True),
    sa.Column('decided_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=True),
    sa.Column('approved_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('transfer_key', sa.String(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.CheckConstraint("status <> 'verified' OR decided_by_id IS NOT NULL", name=op.f('ck_radar_answers_verified_has_officer')),
    sa.CheckConstraint("status IN ('submitted', 'pending_approval', 'verified', 'rejected')", name=op.f('ck_radar_answers_status')),
    sa.CheckConstraint('amount IS NULL OR amount > 0', name=op.f('ck_radar_answers_amount_positive')),
    sa.ForeignKeyConstraint(['approved_by_id'], ['users.id'], name=op.f('fk_radar_answers_approved_by_id_users')),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_radar_answers_decided_by_id_users')),
    sa.ForeignKeyConstraint(['notice_id'], ['radar_notices.id'], name=op.f('fk_radar_answers_notice_id_radar_notices')),
    sa.ForeignKeyConstraint(['volunteer_id'], ['users.id'], name=op.f('fk_radar_answers_volunteer_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_radar_answers')),
    sa.UniqueConstraint('notice_id', 'volunteer_id', name=op.f('uq_radar_answers_notice_id_volunteer_id')),
    sa.UniqueConstraint('transfer_key', name=op.f('uq_radar_answers_transfer_key'))
    )
    with op.batch_alter_table('radar_answers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_radar_answers_notice_id'), ['notice_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_radar_answers_volunteer_id'), ['volunteer_id'], unique=False)

    op.create_table('radar_events',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('notice_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('user_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('notice', 'notice_closed', 'payment', 'award')", name=op.f('ck_radar_events_kind')),
    sa.ForeignKeyConstraint(['notice_id'], ['radar_notices.id'], name=op.f('fk_radar_events_notice_id_radar_notices')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_radar_events_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_radar_events'))
    )
    with op.batch_alter_table('radar_events', schema=None) as batch_op:
        batch_op.create_index('ix_radar_events_user', ['user_id', 'id'], unique=False)

    op.create_table('radar_notice_areas',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('notice_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('org_unit_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.ForeignKeyConstraint(['notice_id'], ['radar_notices.id'], name=op.f('fk_radar_notice_areas_notice_id_radar_notices')),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_units.id'], name=op.f('fk_radar_notice_areas_org_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_radar_notice_areas')),
    sa.UniqueConstraint('notice_id', 'org_unit_id', name=op.f('uq_radar_notice_areas_notice_id_org_unit_id'))
    )
    with op.batch_alter_table('radar_notice_areas', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_radar_notice_areas_org_unit_id'), ['org_unit_id'], unique=False)

    op.create_table('radar_notice_versions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('notice_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=120), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('bounty', sa.BigInteger(), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('edited_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('edited_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['edited_by_id'], ['users.id'], name=op.f('fk_radar_notice_versions_edited_by_id_users')),
    sa.ForeignKeyConstraint(['notice_id'], ['radar_notices.id'], name=op.f('fk_radar_notice_versions_notice_id_radar_notices')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_radar_notice_versions')),
    sa.UniqueConstraint('notice_id', 'version', name=op.f('uq_radar_notice_versions_notice_id_version'))
    )
    op.create_table('radar_reports',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('category', sa.String(length=20), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('place', sa.String(length=200), nullable=True),
    sa.Column('phone', sa.String(length=32), nullable=True),
    sa.Column('org_unit_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('consent_version', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('notice_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('case_ref', sa.String(length=60), nullable=True),
    sa.Column('triaged_by_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('triage_note', sa.Text(), nullable=True),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('purge_after', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.CheckConstraint("category IN ('theft', 'fraud', 'drugs', 'fire_hazard', 'traffic', 'dispute', 'suspicious', 'missing', 'other')", name=op.f('ck_radar_reports_category')),
    sa.CheckConstraint("status IN ('new', 'converted', 'linked', 'closed')", name=op.f('ck_radar_reports_status')),
    sa.ForeignKeyConstraint(['notice_id'], ['radar_notices.id'], name=op.f('fk_radar_reports_notice_id_radar_notices')),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_units.id'], name=op.f('fk_radar_reports_org_unit_id_org_units')),
    sa.ForeignKeyConstraint(['triaged_by_id'], ['users.id'], name=op.f('fk_radar_reports_triaged_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_radar_reports'))
    )
    with op.batch_alter_table('radar_reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_radar_reports_org_unit_id'), ['org_unit_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_radar_reports_purge_after'), ['purge_after'], unique=False)

    op.create_table('radar_photos',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('notice_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('answer_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('report_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('content_type', sa.String(length=20), nullable=False),
    sa.Column('width', sa.Integer(), nullable=False),
    sa.Column('height', sa.Integer(), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.CheckConstraint("content_type IN ('image/jpeg', 'image/png', 'image/webp')", name=op.f('ck_radar_photos_content_type')),
    sa.CheckConstraint('(CASE WHEN notice_id IS NULL THEN 0 ELSE 1 END) + (CASE WHEN answer_id IS NULL THEN 0 ELSE 1 END) + (CASE WHEN report_id IS NULL THEN 0 ELSE 1 END) = 1', name=op.f('ck_radar_photos_one_owner')),
    sa.ForeignKeyConstraint(['answer_id'], ['radar_answers.id'], name=op.f('fk_radar_photos_answer_id_radar_answers')),
    sa.ForeignKeyConstraint(['notice_id'], ['radar_notices.id'], name=op.f('fk_radar_photos_notice_id_radar_notices')),
    sa.ForeignKeyConstraint(['report_id'], ['radar_reports.id'], name=op.f('fk_radar_photos_report_id_radar_reports')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_radar_photos'))
    )
    with op.batch_alter_table('radar_photos', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_radar_photos_answer_id'), ['answer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_radar_photos_notice_id'), ['notice_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_radar_photos_report_id'), ['report_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('radar_photos', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_radar_photos_report_id'))
        batch_op.drop_index(batch_op.f('ix_radar_photos_notice_id'))
        batch_op.drop_index(batch_op.f('ix_radar_photos_answer_id'))

    op.drop_table('radar_photos')
    with op.batch_alter_table('radar_reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_radar_reports_purge_after'))
        batch_op.drop_index(batch_op.f('ix_radar_reports_org_unit_id'))

    op.drop_table('radar_reports')
    op.drop_table('radar_notice_versions')
    with op.batch_alter_table('radar_notice_areas', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_radar_notice_areas_org_unit_id'))

    op.drop_table('radar_notice_areas')
    with op.batch_alter_table('radar_events', schema=None) as batch_op:
        batch_op.drop_index('ix_radar_events_user')

    op.drop_table('radar_events')
    with op.batch_alter_table('radar_answers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_radar_answers_volunteer_id'))
        batch_op.drop_index(batch_op.f('ix_radar_answers_notice_id'))

    op.drop_table('radar_answers')
    op.drop_table('radar_preferences')
    with op.batch_alter_table('radar_notices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_radar_notices_officer_id'))
        batch_op.drop_index(batch_op.f('ix_radar_notices_ends_at'))

    op.drop_table('radar_notices')
