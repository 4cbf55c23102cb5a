"""surveys (社调): surveys, their questions and targets, who answered, and the answers

Revision ID: 0011
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0008"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "surveys",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("intro", sa.Text(), nullable=False),
        sa.Column("org_unit_id", BigId, sa.ForeignKey("org_units.id", name=op.f("fk_surveys_org_unit_id_org_units")), nullable=False),
        sa.Column("created_by_id", BigId, sa.ForeignKey("users.id", name=op.f("fk_surveys_created_by_id_users")), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("named", sa.Boolean(), nullable=False),
        sa.Column("reward", sa.BigInteger(), nullable=False),
        sa.Column("max_responses", sa.Integer(), nullable=False),
        sa.Column("paid_responses", sa.Integer(), nullable=False),
        sa.Column("responses", sa.Integer(), nullable=False),
        sa.Column("closes_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reserve_account_id", BigId, sa.ForeignKey("accounts.id", name=op.f("fk_surveys_reserve_account_id_accounts")), nullable=True),
        sa.Column("hold_key", sa.String(100), nullable=True),
        sa.Column("hold_seq", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("status IN ('draft', 'published', 'closed')", name=op.f("ck_surveys_status")),
        sa.CheckConstraint("reward >= 0", name=op.f("ck_surveys_reward_not_negative")),
        sa.CheckConstraint("max_responses >= 1", name=op.f("ck_surveys_max_positive")),
        sa.CheckConstraint("paid_responses >= 0 AND paid_responses <= max_responses", name=op.f("ck_surveys_paid_within_max")),
        sa.CheckConstraint("responses >= paid_responses AND responses <= max_responses", name=op.f("ck_surveys_responses_within_max")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_surveys")),
    )
    op.create_index(op.f("ix_surveys_org_unit_id"), "surveys", ["org_unit_id"])
    op.create_table(
        "survey_questions",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("survey_id", BigId, sa.ForeignKey("surveys.id", name=op.f("fk_survey_questions_survey_id_surveys")), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("text", sa.String(500), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("options", sa.Text(), nullable=False),
        sa.Column("scale_max", sa.Integer(), nullable=True),
        sa.CheckConstraint("kind IN ('single', 'multiple', 'scale', 'text')", name=op.f("ck_survey_questions_kind")),
        sa.CheckConstraint("kind <> 'scale' OR (scale_max BETWEEN 2 AND 10)", name=op.f("ck_survey_questions_scale_bounds")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_questions")),
    )
    op.create_index(op.f("ix_survey_questions_survey_id"), "survey_questions", ["survey_id"])
    op.create_table(
        "survey_targets",
        sa.Column("survey_id", BigId, sa.ForeignKey("surveys.id", name=op.f("fk_survey_targets_survey_id_surveys")), nullable=False),
        sa.Column("org_unit_id", BigId, sa.ForeignKey("org_units.id", name=op.f("fk_survey_targets_org_unit_id_org_units")), nullable=False),
        sa.PrimaryKeyConstraint("survey_id", "org_unit_id", name=op.f("pk_survey_targets")),
    )
    op.create_table(
        "survey_respondents",
        sa.Column("survey_id", BigId, sa.ForeignKey("surveys.id", name=op.f("fk_survey_respondents_survey_id_surveys")), nullable=False),
        sa.Column("user_id", BigId, sa.ForeignKey("users.id", name=op.f("fk_survey_respondents_user_id_users")), nullable=False),
        sa.Column("paid", sa.BigInteger(), nullable=False),
        sa.Column("transfer_key", sa.String(100), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("survey_id", "user_id", name=op.f("pk_survey_respondents")),
        sa.UniqueConstraint("transfer_key", name=op.f("uq_survey_respondents_transfer_key")),
    )
    op.create_table(
        "survey_responses",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("survey_id", BigId, sa.ForeignKey("surveys.id", name=op.f("fk_survey_responses_survey_id_surveys")), nullable=False),
        sa.Column("community_id", BigId, sa.ForeignKey("org_units.id", name=op.f("fk_survey_responses_community_id_org_units")), nullable=False),
        sa.Column("user_id", BigId, sa.ForeignKey("users.id", name=op.f("fk_survey_responses_user_id_users")), nullable=True),
        sa.Column("answers", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_responses")),
    )
    op.create_index(op.f("ix_survey_responses_survey_id"), "survey_responses", ["survey_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_survey_responses_survey_id"), table_name="survey_responses")
    op.drop_table("survey_responses")
    op.drop_table("survey_respondents")
    op.drop_table("survey_targets")
    op.drop_index(op.f("ix_survey_questions_survey_id"), table_name="survey_questions")
    op.drop_table("survey_questions")
    op.drop_index(op.f("ix_surveys_org_unit_id"), table_name="surveys")
    op.drop_table("surveys")
