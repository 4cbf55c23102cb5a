"""radar answers are earning claims; a notice's bounty is an earning reserve

Revision ID: 0014n
Revises: 0013

Existing data moves, nothing is posted to the journal:
- each notice with a bounty gets a reserve (``reserves``) holding its current hold, paid amount and hold sequence;
  new holds are named ``reserve:<id>:hold:<n>`` and their other side is ``reserves:org:<community>`` (the old
  ``radar:bounties:org:<community>`` accounts keep their history and end at zero when their holds resolve);
- each answer becomes a tip claim (category ``answer``) with its text, place, time and decision; a paid answer
  gets its award row (the journal transfer ``radar:answer:<id>`` it already has); a verified answer gets its
  service record (30 minutes, activity ``radar``);
- an answer that awaited a second approval goes back to ``submitted`` (its beans never left the notice's hold):
  an officer verifies it again through the claim routes, where the award then waits for the second officer.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0014n"
down_revision = "0013"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SERVICE_MINUTES = 30


def upgrade() -> None:
    op.create_table('reserves',
    sa.Column('id', ID, autoincrement=True, nullable=False),
    sa.Column('org_unit_id', ID, nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('paid', sa.BigInteger(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('hold_key', sa.String(length=100), nullable=True),
    sa.Column('hold_seq', sa.Integer(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reference', sa.String(length=120), nullable=False),
    sa.Column('created_by_id', ID, nullable=False),
    sa.Column('released_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=False),
    sa.CheckConstraint("status IN ('open', 'released')", name=op.f('ck_reserves_status')),
    sa.CheckConstraint('amount >= 0 AND paid >= 0 AND paid <= amount', name=op.f('ck_reserves_paid_within')),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_reserves_created_by_id_users')),
    sa.ForeignKeyConstraint(['org_unit_id'], ['org_units.id'], name=op.f('fk_reserves_org_unit_id_org_units')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_reserves')),
    sa.UniqueConstraint('hold_key', name=op.f('uq_reserves_hold_key'))
    )
    with op.batch_alter_table('reserves', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reserves_org_unit_id'), ['org_unit_id'], unique=False)
    with op.batch_alter_table('claims', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reserve_id', ID, nullable=True))
        batch_op.add_column(sa.Column('service_activity', sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column('service_minutes', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_claims_reserve_id_reserves'), 'reserves', ['reserve_id'], ['id'])
        batch_op.create_index(batch_op.f('ix_claims_reserve_id'), ['reserve_id'], unique=False)
        batch_op.create_check_constraint(
            'service_whole', "(service_activity IS NULL) = (service_minutes IS NULL) AND "
            "(service_minutes IS NULL OR service_minutes > 0)")
    with op.batch_alter_table('radar_notices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reserve_id', ID, nullable=True))
    with op.batch_alter_table('radar_answers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claim_id', ID, nullable=True))

    _move_data()

    with op.batch_alter_table('radar_notices', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_radar_notices_bounty_within'), type_='check')
        batch_op.drop_constraint(op.f('uq_radar_notices_hold_key'), type_='unique')
        batch_op.drop_column('bounty_paid')
        batch_op.drop_column('hold_key')
        batch_op.drop_column('hold_seq')
        batch_op.create_check_constraint('bounty_nonneg', 'bounty >= 0')
        batch_op.create_foreign_key(batch_op.f('fk_radar_notices_reserve_id_reserves'), 'reserves', ['reserve_id'],
                                    ['id'])
        batch_op.create_unique_constraint(batch_op.f('uq_radar_notices_reserve_id'), ['reserve_id'])
    with op.batch_alter_table('radar_answers', schema=None) as batch_op:
        for name in ('ck_radar_answers_verified_has_officer', 'ck_radar_answers_status',
                     'ck_radar_answers_amount_positive'):
            batch_op.drop_constraint(op.f(name), type_='check')
        batch_op.drop_constraint(op.f('uq_radar_answers_transfer_key'), type_='unique')
        batch_op.drop_constraint(op.f('fk_radar_answers_approved_by_id_users'), type_='foreignkey')
        batch_op.drop_constraint(op.f('fk_radar_answers_decided_by_id_users'), type_='foreignkey')
        for column in ('status', 'text', 'place', 'occurred_at', 'submitted_at', 'amount', 'decided_by_id',
                       'decided_at', 'decision_reason', 'approved_by_id', 'transfer_key'):
            batch_op.drop_column(column)
        batch_op.alter_column('claim_id', existing_type=ID, nullable=False)
        batch_op.create_foreign_key(batch_op.f('fk_radar_answers_claim_id_claims'), 'claims', ['claim_id'], ['id'])
        batch_op.create_unique_constraint(batch_op.f('uq_radar_answers_claim_id'), ['claim_id'])


def _beijing_day(conn: sa.Connection, value: object) -> object:
    """The Beijing date of a stored instant (SQLite keeps UTC text, PostgreSQL an aware value)."""
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    day = moment.astimezone(dt.timezone(dt.timedelta(hours=8))).date()
    return day.isoformat() if conn.dialect.name == "sqlite" else day


def _community_of(conn: sa.Connection, unit_id: int | None) -> int | None:
    while unit_id is not None:
        level, parent = conn.execute(sa.text("SELECT level, parent_id FROM org_units WHERE id = :u"),
                                     {"u": unit_id}).one()
        if level == "community":
            return unit_id
        unit_id = parent
    return None


def _volunteer_community(conn: sa.Connection, user_id: int) -> int | None:
    for (unit,) in conn.execute(sa.text("SELECT org_unit_id FROM role_grants WHERE user_id = :u AND role = "
                                        "'volunteer' AND org_unit_id IS NOT NULL ORDER BY id"), {"u": user_id}):
        found = _community_of(conn, unit)
        if found is not None:
            return found
    return None


def _move_notices(conn: sa.Connection) -> dict[int, tuple[int | None, int | None]]:
    """A reserve per notice with a bounty; returns notice id -> (reserve id, paying community)."""
    out: dict[int, tuple[int | None, int | None]] = {}
    rows = conn.execute(sa.text("SELECT id, status, officer_id, budget_org_unit_id, bounty, bounty_paid, hold_key, "
                                "hold_seq, ends_at, published_at, closed_at FROM radar_notices ORDER BY id")).all()
    for n in rows:
        reserve_id = None
        if n.bounty > 0:
            expires = conn.execute(sa.text("SELECT expires_at FROM transfers WHERE transfer_key = :k"),
                                   {"k": n.hold_key}).scalar() if n.hold_key else None
            reserve_id = conn.execute(sa.text(
                "INSERT INTO reserves (org_unit_id, amount, paid, status, hold_key, hold_seq, expires_at, reference, "
                "created_by_id, released_at, created_at) VALUES (:unit, :amount, :paid, :status, :hold_key, :seq, "
                ":expires, :ref, :officer, :released, :created) RETURNING id"), {
                "unit": n.budget_org_unit_id, "amount": n.bounty, "paid": n.bounty_paid,
                "status": "released" if n.status == "closed" else "open", "hold_key": n.hold_key,
                "seq": n.hold_seq, "expires": expires or n.ends_at, "ref": f"notice:{n.id}", "officer": n.officer_id,
                "released": n.closed_at if n.status == "closed" else None, "created": n.published_at}).scalar()
            conn.execute(sa.text("UPDATE radar_notices SET reserve_id = :r WHERE id = :n"), {"r": reserve_id, "n": n.id})
        out[n.id] = (reserve_id, n.budget_org_unit_id)
    return out


def _move_answer(conn: sa.Connection, a: sa.Row, reserve_id: int | None, community: int) -> None:
    undone = a.status == "pending_approval"  # its beans never left the hold: decided again
    status = "submitted" if undone else a.status
    decided = (None, None, None) if status == "submitted" else (a.decided_by_id, a.decided_at, a.decision_reason)
    claim_id = conn.execute(sa.text(
        "INSERT INTO claims (kind, status, volunteer_id, submitted_by_id, org_unit_id, category, description, "
        "location, occurred_at, submitted_at, decided_by_id, decided_at, decision_reason, reserve_id, "
        "service_activity, service_minutes, created_at) VALUES ('tip', :status, :v, :v, :unit, 'answer', :text, "
        ":place, :occurred, :submitted, :by, :at, :why, :reserve, 'radar', :minutes, :submitted) RETURNING id"), {
        "status": status, "v": a.volunteer_id, "unit": community, "text": a.text, "place": a.place,
        "occurred": a.occurred_at or a.submitted_at, "submitted": a.submitted_at, "by": decided[0],
        "at": decided[1], "why": decided[2], "reserve": reserve_id, "minutes": SERVICE_MINUTES}).scalar()
    conn.execute(sa.text("UPDATE radar_answers SET claim_id = :c WHERE id = :a"), {"c": claim_id, "a": a.id})
    if a.transfer_key:
        conn.execute(sa.text(
            "INSERT INTO awards (source, status, volunteer_id, org_unit_id, claim_id, officer_id, amount, "
            "reversed_amount, reference, reason, transfer_key, approval_reason, approved_by_id, decided_at, "
            "awarded_at, created_at) VALUES ('claim', 'posted', :v, :unit, :c, :officer, :amount, 0, :ref, "
            "'tip:answer', :key, :why, :approver, :at, :at, :at)"), {
            "v": a.volunteer_id, "unit": community, "c": claim_id, "officer": a.decided_by_id, "amount": a.amount,
            "ref": f"claim:{claim_id}", "key": a.transfer_key, "approver": a.approved_by_id,
            "why": "amount_over_threshold" if a.approved_by_id else None, "at": a.decided_at})
    if status == "verified":
        conn.execute(sa.text(
            "INSERT INTO service_records (volunteer_id, activity, source_ref, org_unit_id, description, service_day, "
            "minutes, verified_by, verified_at) VALUES (:v, 'radar', :ref, :unit, '警务雷达 · 线索核实', :day, :minutes, "
            ":by, :at)"), {"v": a.volunteer_id, "ref": f"claim:{claim_id}", "unit": community,
                           "day": _beijing_day(conn, a.decided_at), "minutes": SERVICE_MINUTES,
                           "by": f"user:{a.decided_by_id}", "at": a.decided_at})


def _move_data() -> None:
    conn = op.get_bind()
    notices = _move_notices(conn)
    answers = conn.execute(sa.text("SELECT id, notice_id, volunteer_id, status, text, place, occurred_at, submitted_at, "
                                   "amount, decided_by_id, decided_at, decision_reason, approved_by_id, transfer_key "
                                   "FROM radar_answers ORDER BY id")).all()
    for a in answers:
        reserve_id, paying = notices[a.notice_id]
        community = paying or _volunteer_community(conn, a.volunteer_id)
        if community is None:
            raise RuntimeError(f"radar answer {a.id}: the volunteer belongs to no community; give them one first")
        _move_answer(conn, a, reserve_id, community)


def downgrade() -> None:
    with op.batch_alter_table('radar_answers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('status', sa.String(length=20), nullable=False, server_default='submitted'))
        batch_op.add_column(sa.Column('text', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('place', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('amount', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('decided_by_id', ID, nullable=True))
        batch_op.add_column(sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('decision_reason', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('approved_by_id', ID, nullable=True))
        batch_op.add_column(sa.Column('transfer_key', sa.String(length=100), nullable=True))
    with op.batch_alter_table('radar_notices', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bounty_paid', sa.BigInteger(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('hold_key', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('hold_seq', sa.Integer(), nullable=False, server_default='0'))
    _restore_data()
    with op.batch_alter_table('radar_notices', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('uq_radar_notices_reserve_id'), type_='unique')
        batch_op.drop_constraint(op.f('fk_radar_notices_reserve_id_reserves'), type_='foreignkey')
        batch_op.drop_constraint(op.f('ck_radar_notices_bounty_nonneg'), type_='check')
        batch_op.drop_column('reserve_id')
        batch_op.alter_column('bounty_paid', existing_type=sa.BigInteger(), server_default=None)
        batch_op.alter_column('hold_seq', existing_type=sa.Integer(), server_default=None)
        batch_op.create_check_constraint('bounty_within', 'bounty >= 0 AND bounty_paid >= 0 AND bounty_paid <= bounty')
        batch_op.create_unique_constraint(batch_op.f('uq_radar_notices_hold_key'), ['hold_key'])
    with op.batch_alter_table('radar_answers', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('uq_radar_answers_claim_id'), type_='unique')
        batch_op.drop_constraint(op.f('fk_radar_answers_claim_id_claims'), type_='foreignkey')
        batch_op.drop_column('claim_id')
        batch_op.alter_column('status', existing_type=sa.String(length=20), server_default=None)
        batch_op.alter_column('text', existing_type=sa.Text(), server_default=None)
        batch_op.alter_column('submitted_at', existing_type=sa.DateTime(timezone=True), nullable=False)
        batch_op.create_check_constraint('verified_has_officer', "status <> 'verified' OR decided_by_id IS NOT NULL")
        batch_op.create_check_constraint(
            'status', "status IN ('submitted', 'pending_approval', 'verified', 'rejected')")
        batch_op.create_check_constraint('amount_positive', 'amount IS NULL OR amount > 0')
        batch_op.create_unique_constraint(batch_op.f('uq_radar_answers_transfer_key'), ['transfer_key'])
        batch_op.create_foreign_key(batch_op.f('fk_radar_answers_approved_by_id_users'), 'users', ['approved_by_id'],
                                    ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_radar_answers_decided_by_id_users'), 'users', ['decided_by_id'],
                                    ['id'])
    with op.batch_alter_table('claims', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_claims_service_whole'), type_='check')
        batch_op.drop_index(batch_op.f('ix_claims_reserve_id'))
        batch_op.drop_constraint(op.f('fk_claims_reserve_id_reserves'), type_='foreignkey')
        batch_op.drop_column('service_minutes')
        batch_op.drop_column('service_activity')
        batch_op.drop_column('reserve_id')
    with op.batch_alter_table('reserves', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reserves_org_unit_id'))
    op.drop_table('reserves')


def _restore_data() -> None:
    """Back to the old shape: the answers' text and decision from their claims, the notices' money from their
    reserves (the claims, awards and service records stay: they are valid claims)."""
    conn = op.get_bind()
    conn.execute(sa.text(
        "UPDATE radar_answers SET status = (SELECT status FROM claims WHERE claims.id = radar_answers.claim_id), "
        "text = (SELECT COALESCE(description, '') FROM claims WHERE claims.id = radar_answers.claim_id), "
        "place = (SELECT location FROM claims WHERE claims.id = radar_answers.claim_id), "
        "occurred_at = (SELECT occurred_at FROM claims WHERE claims.id = radar_answers.claim_id), "
        "submitted_at = (SELECT submitted_at FROM claims WHERE claims.id = radar_answers.claim_id), "
        "decided_by_id = (SELECT decided_by_id FROM claims WHERE claims.id = radar_answers.claim_id), "
        "decided_at = (SELECT decided_at FROM claims WHERE claims.id = radar_answers.claim_id), "
        "decision_reason = (SELECT decision_reason FROM claims WHERE claims.id = radar_answers.claim_id), "
        "amount = (SELECT amount FROM awards WHERE awards.claim_id = radar_answers.claim_id AND "
        "awards.status = 'posted'), "
        "transfer_key = (SELECT transfer_key FROM awards WHERE awards.claim_id = radar_answers.claim_id AND "
        "awards.status = 'posted')"))
    conn.execute(sa.text(
        "UPDATE radar_notices SET bounty_paid = COALESCE((SELECT paid FROM reserves WHERE reserves.id = "
        "radar_notices.reserve_id), 0), hold_key = (SELECT hold_key FROM reserves WHERE reserves.id = "
        "radar_notices.reserve_id), hold_seq = COALESCE((SELECT hold_seq FROM reserves WHERE reserves.id = "
        "radar_notices.reserve_id), 0)"))
