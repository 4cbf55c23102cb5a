"""Surveys (社调): build, publish, answer once, close, and read the results.

Money: a paid survey's rewards are reserved when it is published, as a hold of reward x maximum
responses from the owning community's budget into the survey's own reserve account. A complete
response posts one reward of that hold and holds the rest again, then pays the reward from the reserve
to the respondent's wallet, all in one linked batch, so the books never show an unreserved promise and
nobody is paid twice (the respondent row's primary key and the transfer's key both refuse it). Closing
voids the last hold; if nobody closes it, the hold expires by itself at the survey's end.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import secrets
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import errors
from ledger.access import policy
from ledger.access.identity import (
    Actor,
    budget_account_id,
    community_at_or_above,
    descendants,
    scope_units,
    wallet_account_id,
)
from ledger.access.models import OrgUnit
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.infra.db import utc_from_db
from ledger.journal.accounts import open_account_in, post_in
from ledger.journal.models import Transfer
from ledger.journal.posting import hold, post_hold, transfer, void_hold
from ledger.surveys.models import (
    QUESTION_KINDS,
    Survey,
    SurveyQuestion,
    SurveyRespondent,
    SurveyResponse,
    SurveyTarget,
)

MAX_QUESTIONS = 30
MAX_OPTIONS = 12
MAX_RESPONSES = 5_000
MAX_REWARD = 100  # beans per complete response: a survey is a small thing
MAX_OPEN_DAYS = 31  # a hold lives at most 31 days (ledger.journal.posting.MAX_HOLD_TIMEOUT_S)
DEFAULT_OPEN_DAYS = 14
MAX_TEXT_ANSWER = 1_000
MIN_GROUP = 5  # no breakdown of fewer respondents than this is shown


@dataclass(frozen=True)
class QuestionView:
    id: int
    kind: str
    text: str
    required: bool
    options: list[str]
    scale_max: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "text": self.text, "required": self.required,
                "options": self.options, "scale_max": self.scale_max}


@dataclass(frozen=True)
class SurveyView:
    id: int
    title: str
    intro: str
    org_unit_id: int
    status: str
    named: bool
    reward: int
    max_responses: int
    responses: int
    paid_responses: int
    closes_at: dt.datetime
    target_org_unit_ids: list[int]
    questions: list[QuestionView] = field(default_factory=list)
    answered: bool | None = None  # for a respondent: have I answered?

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "intro": self.intro, "org_unit_id": self.org_unit_id,
                "status": self.status, "named": self.named, "reward": self.reward,
                "max_responses": self.max_responses, "responses": self.responses,
                "paid_responses": self.paid_responses, "closes_at": self.closes_at.isoformat(),
                "target_org_unit_ids": self.target_org_unit_ids,
                "questions": [q.to_dict() for q in self.questions], "answered": self.answered}


# --- who may -------------------------------------------------------------------------------------------

def _respondent_community(s: Session, actor: Actor, survey_id: int) -> int:
    """The community through which ``actor`` lives in one of the survey's targets, or refused."""
    targets = set(s.scalars(select(SurveyTarget.org_unit_id).where(SurveyTarget.survey_id == survey_id)))
    home = policy.resident_home_in(s, actor, targets)
    if home is None:
        raise DomainError(errors.SURVEY_OUTSIDE_AREA)
    return _community_at_or_above(s, home)


def _community_at_or_above(s: Session, org_unit_id: int) -> int:
    """The community of a unit; a unit above every community (a street office) pays from its own budget."""
    return community_at_or_above(s, org_unit_id) or org_unit_id


def _may_read(s: Session, actor: Actor, survey: Survey) -> bool:
    if policy.may_run_for(s, actor, survey.org_unit_id):
        return True
    if survey.status == "draft":
        return False
    try:
        _respondent_community(s, actor, survey.id)
    except DomainError:
        return False
    return True


# --- building a survey ---------------------------------------------------------------------------------

def _check_question(q: dict[str, Any]) -> dict[str, Any]:
    kind, text = q.get("kind"), q.get("text")
    options = list(q.get("options") or [])
    if kind not in QUESTION_KINDS or not isinstance(text, str) or not 1 <= len(text.strip()) <= 500:
        raise DomainError(errors.SURVEY_INVALID, "each question needs a kind and a text of 1 to 500 characters")
    if kind in ("single", "multiple"):
        labels = [o.strip() for o in options if isinstance(o, str)]
        if not 2 <= len(labels) <= MAX_OPTIONS or len(set(labels)) != len(labels) or not all(
                1 <= len(o) <= 200 for o in labels):
            raise DomainError(errors.SURVEY_INVALID, f"a choice needs 2 to {MAX_OPTIONS} distinct options")
        options = labels
    elif options:
        raise DomainError(errors.SURVEY_INVALID, "only choice questions have options")
    scale_max = q.get("scale_max")
    if kind == "scale" and not (type(scale_max) is int and 2 <= scale_max <= 10):
        raise DomainError(errors.SURVEY_INVALID, "a scale runs from 1 to between 2 and 10")
    return {"kind": kind, "text": text.strip(), "required": bool(q.get("required", True)), "options": options,
            "scale_max": scale_max if kind == "scale" else None}


def _check_limits(books: Books, reward: Any, max_responses: Any, closes_at: Any) -> None:
    if type(reward) is not int or not 0 <= reward <= MAX_REWARD:
        raise DomainError(errors.SURVEY_INVALID, f"the reward is 0 to {MAX_REWARD} beans per response")
    if type(max_responses) is not int or not 1 <= max_responses <= MAX_RESPONSES:
        raise DomainError(errors.SURVEY_INVALID, f"the maximum is 1 to {MAX_RESPONSES} responses")
    if not isinstance(closes_at, dt.datetime) or closes_at.tzinfo is None:
        raise DomainError(errors.SURVEY_INVALID, "closes_at needs a time zone")
    now = books.now()
    if not now < closes_at <= now + dt.timedelta(days=MAX_OPEN_DAYS):
        raise DomainError(errors.SURVEY_INVALID, f"a survey closes within {MAX_OPEN_DAYS} days from now")


def create_survey(books: Books, actor: Actor, *, title: str, questions: list[dict[str, Any]],
                  target_org_unit_ids: list[int] | None = None, org_unit_id: int | None = None,
                  closes_at: dt.datetime | None = None, reward: int = 0, max_responses: int = 100, intro: str = "",
                  named: bool = False, publish: bool = False) -> SurveyView:
    """A survey of ``org_unit_id`` (a community in the officer's scope; default: the community of the first
    target) for residents of the targets (default: the whole community), open until ``closes_at`` (default
    ``DEFAULT_OPEN_DAYS`` from now). A draft, or with ``publish`` published at once in the same transaction."""
    if closes_at is None:
        closes_at = books.now() + dt.timedelta(days=DEFAULT_OPEN_DAYS)
    if org_unit_id is None and not target_org_unit_ids:
        raise DomainError(errors.SURVEY_INVALID, "name the community (org_unit_id) or the target units")
    if not isinstance(title, str) or not 1 <= len(title.strip()) <= 200 or len(intro or "") > 4000:
        raise DomainError(errors.SURVEY_INVALID, "a title of 1 to 200 characters, an intro up to 4000")
    if not isinstance(questions, list) or not 1 <= len(questions) <= MAX_QUESTIONS:
        raise DomainError(errors.SURVEY_INVALID, f"1 to {MAX_QUESTIONS} questions")
    checked = [_check_question(q) for q in questions]
    _check_limits(books, reward, max_responses, closes_at)
    targets = sorted(set(target_org_unit_ids or [org_unit_id]))
    if not all(type(x) is int for x in targets):
        raise DomainError(errors.SURVEY_INVALID, "targets are org unit ids")

    def work(s: Session) -> SurveyView:
        owner = org_unit_id if org_unit_id is not None else _community_at_or_above(s, targets[0])
        unit = s.get(OrgUnit, owner) if type(owner) is int else None
        if unit is None or unit.level != "community":
            raise DomainError(errors.NOT_A_COMMUNITY, org_unit_id=owner)
        policy.require_officer_in_scope(s, actor, owner)
        area = descendants(s, owner)
        if any(t not in area for t in targets):
            raise DomainError(errors.SURVEY_INVALID, "targets lie in the survey's community",
                              outside=[t for t in targets if t not in area])
        survey = Survey(title=title.strip(), intro=intro or "", org_unit_id=owner, created_by_id=actor.user_id,
                        status="draft", named=bool(named), reward=reward, max_responses=max_responses,
                        paid_responses=0, responses=0, closes_at=closes_at, hold_seq=0)
        s.add(survey)
        s.flush()
        for position, q in enumerate(checked):
            s.add(SurveyQuestion(survey_id=survey.id, position=position, kind=q["kind"], text=q["text"],
                                 required=q["required"], options=json.dumps(q["options"], ensure_ascii=False),
                                 scale_max=q["scale_max"]))
        s.add_all([SurveyTarget(survey_id=survey.id, org_unit_id=t) for t in targets])
        s.flush()
        if publish:
            _publish_in(s, books, actor, survey)
        return _view(s, survey)

    return books.run(work)


# --- publishing and closing ----------------------------------------------------------------------------

def _lock_survey(s: Session, survey_id: Any) -> Survey:
    survey = s.get(Survey, survey_id, with_for_update=True) if type(survey_id) is int else None
    if survey is None:
        raise DomainError(errors.SURVEY_NOT_FOUND, survey_id=survey_id)
    return survey


def _hold_timeout_s(books: Books, survey: Survey) -> int:
    return max(1, int((utc_from_db(survey.closes_at) - books.now()).total_seconds()))


def _publish_in(s: Session, books: Books, actor: Actor, survey: Survey) -> None:
    """Open ``survey`` for answers; a paid survey's rewards are held from the community budget first."""
    if survey.status != "draft":
        raise DomainError(errors.SURVEY_NOT_DRAFT)
    if utc_from_db(survey.closes_at) <= books.now():
        raise DomainError(errors.SURVEY_INVALID, "the survey's closing time has passed")
    if survey.reward > 0:
        reserve = open_account_in(s, f"survey:{survey.id}", "budget", name=f"survey {survey.id} rewards",
                                  owner_ref=f"survey:{survey.id}")
        survey.reserve_account_id = reserve.id
        key = f"survey:{survey.id}:hold:0"
        post_in(s, books, [hold(key, "award", budget_account_id(s, survey.org_unit_id), reserve.id,
                                survey.reward * survey.max_responses, _hold_timeout_s(books, survey),
                                actor=actor.ref, reason="survey rewards reserved", reference=f"survey:{survey.id}")])
        survey.hold_key = key
    survey.status = "published"
    survey.published_at = books.now()


def publish_survey(books: Books, actor: Actor, survey_id: int) -> SurveyView:
    """Open a draft for answers; a paid survey's rewards are held from the community budget first."""
    def work(s: Session) -> SurveyView:
        survey = _lock_survey(s, survey_id)
        policy.require_officer_in_scope(s, actor, survey.org_unit_id)
        _publish_in(s, books, actor, survey)
        return _view(s, survey)

    return books.run(work)


def _hold_is_pending(s: Session, key: str | None) -> bool:
    """Is the hold still reserving beans (not posted, voided or expired)?"""
    if key is None:
        return False
    pending_id = s.scalar(select(Transfer.id).where(Transfer.transfer_key == key))
    resolved = s.scalar(select(Transfer.id).where(Transfer.pending_id == pending_id))
    return pending_id is not None and resolved is None


def close_survey(books: Books, actor: Actor, survey_id: int) -> SurveyView:
    """Stop taking answers; the unpaid rewards go back to the community budget."""
    def work(s: Session) -> SurveyView:
        survey = _lock_survey(s, survey_id)
        policy.require_officer_in_scope(s, actor, survey.org_unit_id)
        if survey.status == "closed":
            return _view(s, survey)  # closing twice is a retry, not a mistake
        if _hold_is_pending(s, survey.hold_key) and utc_from_db(survey.closes_at) > books.now():
            post_in(s, books, [void_hold(f"survey:{survey.id}:void", survey.hold_key, actor=actor.ref,
                                         reason="survey closed", reference=f"survey:{survey.id}")])
        survey.hold_key = None
        survey.status = "closed"
        survey.closed_at = books.now()
        return _view(s, survey)

    return books.run(work)


# --- answering -----------------------------------------------------------------------------------------

def _check_answers(questions: list[SurveyQuestion], answers: Any) -> dict[str, Any]:
    if not isinstance(answers, dict) or len(answers) > len(questions):
        raise DomainError(errors.SURVEY_ANSWER_INVALID, "answers are an object of question id to answer")
    by_id = {str(q.id): q for q in questions}
    unknown = [k for k in answers if str(k) not in by_id]
    if unknown:
        raise DomainError(errors.SURVEY_ANSWER_INVALID, "unknown question", questions=unknown[:5])
    clean: dict[str, Any] = {}
    for qid, q in by_id.items():
        value = answers.get(qid, answers.get(int(qid)) if qid.isdigit() else None)
        if value is None or value == "" or value == []:
            if q.required:
                raise DomainError(errors.SURVEY_ANSWER_INVALID, "a required question is unanswered", question=q.id)
            continue
        clean[qid] = _check_answer(q, value)
    return clean


def _check_answer(q: SurveyQuestion, value: Any) -> Any:
    options = json.loads(q.options or "[]")
    ok = False
    if q.kind == "single":
        ok = isinstance(value, str) and value in options
    elif q.kind == "multiple":
        ok = (isinstance(value, list) and all(isinstance(v, str) and v in options for v in value)
              and len(set(value)) == len(value))
    elif q.kind == "scale":
        ok = type(value) is int and 1 <= value <= (q.scale_max or 0)
    elif q.kind == "text":
        ok = isinstance(value, str) and len(value) <= MAX_TEXT_ANSWER and "\x00" not in value
        value = value.strip() if ok else value
    if not ok:
        raise DomainError(errors.SURVEY_ANSWER_INVALID, "an answer is not one the question allows", question=q.id)
    return value


def _pay(s: Session, books: Books, actor: Actor, survey: Survey) -> str:
    """One reward from the survey's hold to the respondent's wallet; the rest held again (one batch)."""
    seq = survey.hold_seq
    left = survey.reward * (survey.max_responses - survey.paid_responses)
    requests = [post_hold(f"survey:{survey.id}:post:{seq}", survey.hold_key, survey.reward, actor=actor.ref,
                          reason="survey response", reference=f"survey:{survey.id}")]
    next_key = None
    if left > survey.reward:
        next_key = f"survey:{survey.id}:hold:{seq + 1}"
        requests.append(hold(next_key, "award", budget_account_id(s, survey.org_unit_id),
                             survey.reserve_account_id, left - survey.reward, _hold_timeout_s(books, survey),
                             actor=actor.ref, reason="survey rewards reserved", reference=f"survey:{survey.id}"))
    pay_key = f"survey:{survey.id}:pay:{actor.user_id}"
    requests.append(transfer(pay_key, "award", survey.reserve_account_id, wallet_account_id(s, actor.user_id),
                             survey.reward, actor=actor.ref, reason="survey response",
                             reference=f"survey:{survey.id}"))
    post_in(s, books, requests)
    survey.hold_key, survey.hold_seq = next_key, seq + 1
    survey.paid_responses += 1
    return pay_key


def answer_survey(books: Books, actor: Actor, survey_id: int, answers: dict[str, Any]) -> dict[str, Any]:
    """Record ``actor``'s one complete response and pay its reward at once."""
    def work(s: Session) -> dict[str, Any]:
        survey = _lock_survey(s, survey_id)
        if survey.status == "draft" and not _may_read(s, actor, survey):
            raise DomainError(errors.SURVEY_NOT_FOUND, survey_id=survey_id)
        community = _respondent_community(s, actor, survey.id)
        if survey.status != "published" or utc_from_db(survey.closes_at) <= books.now():
            raise DomainError(errors.SURVEY_NOT_OPEN)
        if s.get(SurveyRespondent, (survey.id, actor.user_id)) is not None:
            raise DomainError(errors.SURVEY_ALREADY_ANSWERED)
        if survey.responses >= survey.max_responses:
            raise DomainError(errors.SURVEY_FULL)
        questions = _questions(s, survey.id)
        clean = _check_answers(questions, answers)
        key = _pay(s, books, actor, survey) if survey.reward > 0 else None
        s.add(SurveyRespondent(survey_id=survey.id, user_id=actor.user_id, paid=survey.reward, transfer_key=key,
                               answered_at=books.now()))
        s.add(SurveyResponse(id=secrets.token_hex(16), survey_id=survey.id, community_id=community,
                             user_id=actor.user_id if survey.named else None,
                             answers=json.dumps(clean, ensure_ascii=False, sort_keys=True)))
        survey.responses += 1
        s.flush()
        return {"survey_id": survey.id, "paid": survey.reward, "status": "recorded"}

    return books.run(work)


# --- reading -------------------------------------------------------------------------------------------

def _questions(s: Session, survey_id: int) -> list[SurveyQuestion]:
    return list(s.scalars(select(SurveyQuestion).where(SurveyQuestion.survey_id == survey_id)
                          .order_by(SurveyQuestion.position)))


def _view(s: Session, survey: Survey, answered: bool | None = None) -> SurveyView:
    questions = [QuestionView(q.id, q.kind, q.text, q.required, json.loads(q.options or "[]"), q.scale_max)
                 for q in _questions(s, survey.id)]
    targets = sorted(s.scalars(select(SurveyTarget.org_unit_id).where(SurveyTarget.survey_id == survey.id)))
    return SurveyView(survey.id, survey.title, survey.intro, survey.org_unit_id, survey.status, survey.named,
                      survey.reward, survey.max_responses, survey.responses, survey.paid_responses,
                      utc_from_db(survey.closes_at), targets, questions, answered)


def get_survey(books: Books, actor: Actor, survey_id: int) -> SurveyView:
    def work(s: Session) -> SurveyView:
        survey = s.get(Survey, survey_id) if type(survey_id) is int else None
        if survey is None or not _may_read(s, actor, survey):
            raise DomainError(errors.SURVEY_NOT_FOUND, survey_id=survey_id)
        answered = s.get(SurveyRespondent, (survey.id, actor.user_id)) is not None
        return _view(s, survey, answered)

    return books.run(work, readonly=True)


def communities_run_by(books: Books, actor: Actor) -> list[dict[str, Any]]:
    """The communities whose surveys ``actor`` may build and run (none for residents)."""
    def work(s: Session) -> list[dict[str, Any]]:
        rows = s.execute(select(OrgUnit.id, OrgUnit.name).where(OrgUnit.level == "community").order_by(OrgUnit.id))
        return [{"id": r.id, "name": r.name} for r in rows
                if actor.has_role("officer") and policy.may_run_for(s, actor, r.id)]

    return books.run(work, readonly=True)


def survey_page(books: Books, actor: Actor, survey_id: int) -> tuple[SurveyView, dict[str, Any] | None]:
    """A survey as its reader may see it: with the results for the staff who run it, without for residents."""
    view = get_survey(books, actor, survey_id)
    staff = books.run(lambda s: actor.has_role("officer") and policy.may_run_for(s, actor, view.org_unit_id),
                      readonly=True)
    return view, survey_results(books, actor, survey_id) if staff else None


def list_surveys(books: Books, actor: Actor, *, limit: int = 100) -> list[SurveyView]:
    """Staff: the surveys of the communities they serve. Residents: the open surveys of their area."""
    def work(s: Session) -> list[SurveyView]:
        rows = s.scalars(select(Survey).order_by(Survey.id.desc()).limit(2_000)).all()
        units = scope_units(s, actor, "officer") if actor.has_role("officer") else set()
        out = []
        for survey in rows:
            staff = units is None or survey.org_unit_id in (units or set())
            if staff or (survey.status == "published" and _may_read(s, actor, survey)):
                answered = s.get(SurveyRespondent, (survey.id, actor.user_id)) is not None
                out.append(_view(s, survey, answered))
            if len(out) >= limit:
                break
        return out

    return books.run(work, readonly=True)


def _tally(questions: list[SurveyQuestion], responses: list[SurveyResponse]) -> list[dict[str, Any]]:
    answers = [json.loads(r.answers) for r in responses]
    out = []
    for q in questions:
        given = [a[str(q.id)] for a in answers if str(q.id) in a]
        row: dict[str, Any] = {"question_id": q.id, "kind": q.kind, "text": q.text, "answered": len(given)}
        if q.kind in ("single", "multiple"):
            counts = Counter(v for g in given for v in (g if isinstance(g, list) else [g]))
            row["counts"] = {o: counts.get(o, 0) for o in json.loads(q.options or "[]")}
        elif q.kind == "scale":
            counts = Counter(given)
            row["counts"] = {str(i): counts.get(i, 0) for i in range(1, (q.scale_max or 0) + 1)}
        else:
            row["texts"] = sorted(given)  # sorted: the order of answers tells nothing of who wrote them
        out.append(row)
    return out


def survey_results(books: Books, actor: Actor, survey_id: int) -> dict[str, Any]:
    """Counts per option, overall and per community; groups of fewer than ``MIN_GROUP`` are not shown."""
    def work(s: Session) -> dict[str, Any]:
        survey = s.get(Survey, survey_id) if type(survey_id) is int else None
        if survey is None:
            raise DomainError(errors.SURVEY_NOT_FOUND, survey_id=survey_id)
        policy.require_officer_in_scope(s, actor, survey.org_unit_id)
        questions = _questions(s, survey.id)
        responses = list(s.scalars(select(SurveyResponse).where(SurveyResponse.survey_id == survey.id)))
        by_community: dict[int, list[SurveyResponse]] = {}
        for r in responses:
            by_community.setdefault(r.community_id, []).append(r)
        shown = len(responses) >= MIN_GROUP
        return {
            "survey_id": survey.id, "title": survey.title, "status": survey.status,
            "responses": len(responses), "paid_responses": survey.paid_responses, "min_group": MIN_GROUP,
            "questions": _tally(questions, responses) if shown else [],
            "communities": [{"org_unit_id": c, "responses": len(rs), "questions": _tally(questions, rs)}
                            for c, rs in sorted(by_community.items()) if len(rs) >= MIN_GROUP],
            "hidden_communities": sum(1 for rs in by_community.values() if len(rs) < MIN_GROUP),
        }

    return books.run(work, readonly=True)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> Any:
    """Spreadsheet-safe: a text that a spreadsheet would run as a formula is shown as text."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def results_csv(books: Books, actor: Actor, survey_id: int) -> bytes:
    """The overall results as CSV, UTF-8 with a BOM (so that Excel in Chinese opens it right)."""
    results = survey_results(books, actor, survey_id)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["question", "kind", "option", "count"])
    for q in results["questions"]:
        for option, count in (q.get("counts") or {}).items():
            w.writerow([_cell(q["text"]), q["kind"], _cell(option), count])
        for text in q.get("texts") or []:
            w.writerow([_cell(q["text"]), q["kind"], _cell(text), 1])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")
