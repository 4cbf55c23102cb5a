"""Surveys (社调): the survey and its questions, the org units it asks, who answered, and the answers.

``survey_respondents`` says who answered (so nobody answers twice and each is paid once);
``survey_responses`` holds the answers under a random id, with the respondent's community for the
breakdown and, only for a survey announced as named, the respondent. The two are never joined for an
anonymous survey.
"""

from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ledger.infra.base import Base, BigId, UTCDateTime, created_at_column, in_values

SURVEY_STATUSES = ("draft", "published", "closed")
QUESTION_KINDS = ("single", "multiple", "scale", "text")


class Survey(Base):
    __tablename__ = "surveys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(200))
    intro: Mapped[str] = mapped_column(Text, default="")
    # the community whose officers run it and whose budget pays for it
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), index=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(10), default="draft")
    named: Mapped[bool] = mapped_column(Boolean, default=False)  # respondents are told before they start
    reward: Mapped[int] = mapped_column(BigInteger, default=0)  # beans per complete response
    max_responses: Mapped[int] = mapped_column(Integer)
    paid_responses: Mapped[int] = mapped_column(Integer, default=0)
    responses: Mapped[int] = mapped_column(Integer, default=0)
    closes_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    published_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    closed_at: Mapped[Optional[dt.datetime]] = mapped_column(UTCDateTime())
    reserve_account_id: Mapped[Optional[int]] = mapped_column(ForeignKey("accounts.id"))
    hold_key: Mapped[Optional[str]] = mapped_column(String(100))  # the hold now reserving the unpaid rewards
    hold_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[dt.datetime] = created_at_column()

    __table_args__ = (
        CheckConstraint(in_values("status", SURVEY_STATUSES), name="status"),
        CheckConstraint("reward >= 0", name="reward_not_negative"),
        CheckConstraint("max_responses >= 1", name="max_positive"),
        CheckConstraint("paid_responses >= 0 AND paid_responses <= max_responses", name="paid_within_max"),
        CheckConstraint("responses >= paid_responses AND responses <= max_responses", name="responses_within_max"),
    )


class SurveyQuestion(Base):
    __tablename__ = "survey_questions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10))
    text: Mapped[str] = mapped_column(String(500))
    required: Mapped[bool] = mapped_column(Boolean, default=True)
    options: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of labels (single, multiple)
    scale_max: Mapped[Optional[int]] = mapped_column(Integer)  # scale: 1..scale_max

    __table_args__ = (
        CheckConstraint(in_values("kind", QUESTION_KINDS), name="kind"),
        CheckConstraint("kind <> 'scale' OR (scale_max BETWEEN 2 AND 10)", name="scale_bounds"),
    )


class SurveyTarget(Base):
    __tablename__ = "survey_targets"

    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id"), primary_key=True)
    org_unit_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"), primary_key=True)


class SurveyRespondent(Base):
    """One row per person who answered: the unique key is what makes "answer once" hold."""

    __tablename__ = "survey_respondents"

    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    paid: Mapped[int] = mapped_column(BigInteger, default=0)
    transfer_key: Mapped[Optional[str]] = mapped_column(String(100), unique=True)
    answered_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class SurveyResponse(Base):
    """The answers, under a random id: no time, and no person unless the survey was announced as named."""

    __tablename__ = "survey_responses"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id"), index=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("org_units.id"))
    user_id: Mapped[Optional[int]] = mapped_column(ForeignKey("users.id"))  # named surveys only
    answers: Mapped[str] = mapped_column(Text)  # JSON {question_id: answer}
