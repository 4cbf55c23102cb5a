"""The export of a person's own data (PIPL art. 45: the right to access and copy).

Everything the system holds about the signed-in person, as rows of the tables that hold it: profile and
roles, consents, recruitment sign-ups, claims and tips they are the volunteer of or submitted, awards,
redemptions from their wallet, patrol sign-ups, service records and certificates, survey respondent rows (who
answered which survey and what was paid: never the answers, which are anonymous unless the survey is named,
and then only their own), security-log events about them, and their wallet's history. Secrets (password and
code hashes) are left out; other people appear only as ids.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ledger import errors
from ledger.access.identity import Actor
from ledger.access.models import RoleGrant, SecurityEvent, User
from ledger.earning.models import Award, Claim
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.infra.fonts import find_cjk_font
from ledger.journal.models import Account, Entry, Transfer
from ledger.notify.models import Notification
from ledger.patrols.models import PatrolSignup
from ledger.people.models import Consent, Signup
from ledger.radar.models import Answer as RadarAnswer
from ledger.radar.models import Preference
from ledger.redemption.models import Redemption
from ledger.service.models import ServiceCertificate, ServiceRecord
from ledger.surveys.models import SurveyRespondent, SurveyResponse

EXPORT_VERSION = 1
# never handed out, not even to their owner: they only help an attacker
SECRET_COLUMNS = frozenset({"password_hash", "code_hash", "token_hash"})
SECTIONS = ("profile", "roles", "consents", "signups", "claims", "radar_answers", "radar_preferences", "awards",
            "redemptions", "patrol_signups",
            "service_records", "service_certificates", "survey_respondents", "survey_answers",
            "notifications", "security_events", "wallet")


def _value(v: Any) -> Any:
    if isinstance(v, (dt.datetime, dt.date)):
        return v.isoformat()
    return v


def row_dict(row: Any) -> dict[str, Any]:
    """A model row as plain JSON values, without its secret columns."""
    return {c.key: _value(getattr(row, c.key)) for c in row.__table__.columns if c.key not in SECRET_COLUMNS}


def _rows(s: Session, stmt: Any) -> list[dict[str, Any]]:
    return [row_dict(r) for r in s.scalars(stmt)]


def _wallet(s: Session, user_id: int) -> dict[str, Any] | None:
    acc = s.scalar(select(Account).where(Account.kind == "wallet", Account.owner_ref == f"user:{user_id}"))
    if acc is None:
        return None
    lines = []
    for e, t in s.execute(select(Entry, Transfer).join(Transfer, Entry.transfer_id == Transfer.id)
                          .where(Entry.account_id == acc.id).order_by(Entry.seq)):
        lines.append({"seq": e.seq, "at": _value(e.created_at), "kind": t.kind, "phase": t.phase,
                      "side": e.side, "posted_delta": e.posted_delta, "pending_delta": e.pending_delta,
                      "balance_after": e.balance_after, "reference": t.reference, "reason": t.reason,
                      "transfer_id": t.id})
    return {"account_id": acc.id, "code": acc.code, "status": acc.status,
            "balance": acc.credits_posted - acc.debits_posted,
            "on_hold": acc.debits_pending, "entries": lines}


def collect(s: Session, user_id: int) -> dict[str, Any]:
    """Every record about ``user_id``, by section (see ``SECTIONS``)."""
    user = s.get(User, user_id)
    if user is None:
        raise DomainError(errors.USER_NOT_FOUND, "no such person")
    signup_ids = list(s.scalars(select(Signup.id).where(Signup.user_id == user_id)))
    wallet = _wallet(s, user_id)
    return {
        "profile": row_dict(user),
        "roles": _rows(s, select(RoleGrant).where(RoleGrant.user_id == user_id).order_by(RoleGrant.id)),
        "consents": _rows(s, select(Consent).where(or_(Consent.user_id == user_id, Consent.signup_id.in_(
            signup_ids))).order_by(Consent.id)),
        "signups": _rows(s, select(Signup).where(Signup.user_id == user_id).order_by(Signup.id)),
        "claims": _rows(s, select(Claim).where(or_(Claim.volunteer_id == user_id, Claim.submitted_by_id ==
                                                    user_id)).order_by(Claim.id)),
        "radar_answers": _rows(s, select(RadarAnswer).where(RadarAnswer.volunteer_id == user_id)
                               .order_by(RadarAnswer.id)),
        "radar_preferences": _rows(s, select(Preference).where(Preference.user_id == user_id)),
        "awards": _rows(s, select(Award).where(Award.volunteer_id == user_id).order_by(Award.id)),
        "redemptions": [] if wallet is None else _rows(s, select(Redemption).where(
            Redemption.wallet_account_id == wallet["account_id"]).order_by(Redemption.id)),
        "patrol_signups": _rows(s, select(PatrolSignup).where(PatrolSignup.volunteer_id == user_id)
                                .order_by(PatrolSignup.id)),
        "service_records": _rows(s, select(ServiceRecord).where(ServiceRecord.volunteer_id == user_id)
                                 .order_by(ServiceRecord.id)),
        "service_certificates": _rows(s, select(ServiceCertificate).where(
            ServiceCertificate.volunteer_id == user_id).order_by(ServiceCertificate.id)),
        "survey_respondents": _rows(s, select(SurveyRespondent).where(SurveyRespondent.user_id == user_id)
                                    .order_by(SurveyRespondent.survey_id)),
        # only named surveys keep who answered; anonymous answers are nobody's, so not exportable as theirs
        "survey_answers": _rows(s, select(SurveyResponse).where(SurveyResponse.user_id == user_id)
                                .order_by(SurveyResponse.id)),
        "notifications": _rows(s, select(Notification).where(Notification.user_id == user_id)
                               .order_by(Notification.id)),
        "security_events": _rows(s, select(SecurityEvent).where(SecurityEvent.user_id == user_id)
                                 .order_by(SecurityEvent.id)),
        "wallet": wallet,
    }


def my_data(books: Books, actor: Actor) -> dict[str, Any]:
    """Everything held about the signed-in person, as one JSON-ready dict."""
    data = books.run(lambda s: collect(s, actor.user_id), readonly=True)
    return {"export_version": EXPORT_VERSION, "generated_at": _value(books.now()), "user_id": actor.user_id,
            **data}


SECTION_TITLES = {
    "profile": "个人资料 Profile", "roles": "角色 Roles", "consents": "同意记录 Consents",
    "signups": "报名 Sign-ups", "claims": "申报与线索 Claims and tips", "awards": "奖励 Awards",
    "radar_answers": "警务雷达线索 Radar tips", "radar_preferences": "警务雷达设置 Radar preferences",
    "redemptions": "兑换 Redemptions", "patrol_signups": "巡逻报名 Patrol shifts",
    "service_records": "服务记录 Service records", "service_certificates": "服务证明 Certificates",
    "survey_respondents": "参与的社调 Surveys answered", "survey_answers": "实名社调答案 Named survey answers",
    "notifications": "消息 Notifications", "security_events": "安全日志 Security log", "wallet": "钱包 Wallet",
}


def my_data_pdf(data: dict[str, Any], font_path: Path | None = None) -> bytes:
    """The export as a readable A4 PDF: one heading per section, one line per field."""
    font = font_path or find_cjk_font()
    if font is None:
        raise DomainError(errors.CJK_FONT_MISSING, "no Chinese font found: install fonts-wqy-microhei or set "
                                                   "GOLDBEAN_CJK_FONT to a .ttf/.ttc file")
    from fpdf import FPDF

    pdf = FPDF(unit="mm", format="A4")
    pdf.set_auto_page_break(True, margin=12)
    try:
        pdf.add_font("cjk", "", str(font))
    except Exception as exc:  # a broken or unusable font file
        raise DomainError(errors.CJK_FONT_MISSING, f"cannot use the font {font}: {exc}") from None
    pdf.add_page()
    pdf.set_font("cjk", size=15)
    pdf.cell(0, 9, "我的数据 My data (金豆 Gold Bean)", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=9)
    pdf.cell(0, 6, f"生成时间 Generated: {data['generated_at']}", new_x="LMARGIN", new_y="NEXT")
    for section in SECTIONS:
        pdf.ln(2)
        pdf.set_font("cjk", size=12)
        pdf.cell(0, 7, SECTION_TITLES[section], new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("cjk", size=8)
        value = data.get(section)
        items = value if isinstance(value, list) else ([] if value is None else [value])
        if not items:
            pdf.cell(0, 5, "(无 none)", new_x="LMARGIN", new_y="NEXT")
        for item in items:
            text = json.dumps(item, ensure_ascii=False, sort_keys=True)
            pdf.multi_cell(0, 4.5, text, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
