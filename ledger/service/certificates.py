"""志愿服务记录证明: a volunteer's verified service hours for a period, as a signed statement (Ed25519, key
purpose ``certificate``, typ ``gb-service-cert+jwt``) that anyone verifies offline with the published key,
and as a Chinese PDF carrying the statement's QR.

The statement names the volunteer by display name and id, the period, the total minutes and the number of
records; never beans (service records are not for sale), never places.
"""

from __future__ import annotations

import datetime as dt
import io
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from sqlalchemy.orm import Session

from ledger import errors
from ledger.access.identity import Actor
from ledger.access.models import User
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.infra.fonts import find_cjk_font
from ledger.infra.keys import unverified_header
from ledger.service.models import ServiceCertificate
from ledger.service.records import ServiceRecordView, service_records_in

MAX_PERIOD_DAYS = 3660
# the statement's shape; the audience is the one certificates carried when patrols issued them, so that
# every certificate ever issued still verifies
CERT_TYP = "gb-service-cert+jwt"
PURPOSE = "certificate"
ISSUER = "goldbean"
AUDIENCE = "goldbean-patrol"
ALGORITHM = "EdDSA"
_REQUIRED = ("iss", "aud", "sub", "jti", "iat", "name", "from", "to", "minutes", "records")


def sign_statement(books: Books, claims: dict[str, Any]) -> str:
    key = books.keys.ensure(PURPOSE)
    return jwt.encode({"iss": ISSUER, "aud": AUDIENCE, **claims}, key.private, algorithm=ALGORITHM,
                      headers={"kid": key.kid, "typ": CERT_TYP})


def _verified_claims(books: Books, code: Any) -> dict[str, Any]:
    """The claims of a genuine statement (any key of the purpose, retired ones too), else ``invalid_certificate``."""
    header = unverified_header(code) if isinstance(code, str) and 20 <= len(code) <= 4096 else None
    if header is None or header.get("alg") != ALGORITHM or header.get("typ") != CERT_TYP:
        raise DomainError(errors.INVALID_CERTIFICATE)
    kid = header.get("kid")
    public = books.keys.any_public(PURPOSE, kid) if isinstance(kid, str) else None
    if public is None:
        raise DomainError(errors.INVALID_CERTIFICATE)
    try:
        claims = jwt.decode(code, public, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=ISSUER,
                            options={"require": list(_REQUIRED), "verify_exp": False, "verify_iat": False,
                                     "verify_nbf": False})
    except jwt.PyJWTError:
        raise DomainError(errors.INVALID_CERTIFICATE) from None
    sub = claims.get("sub")
    if type(claims.get("iat")) is not int or not isinstance(sub, str) or not sub.isdigit() or len(sub) > 18:
        raise DomainError(errors.INVALID_CERTIFICATE)
    return claims


@dataclass(frozen=True)
class Certificate:
    code: str
    volunteer_id: int
    name: str
    first_day: dt.date
    last_day: dt.date
    minutes: int
    records: tuple[ServiceRecordView, ...]
    issued_at: dt.datetime


def issue_certificate(books: Books, actor: Actor, *, first_day: dt.date, last_day: dt.date) -> Certificate:
    """The actor's own certificate for ``first_day``..``last_day`` (Beijing dates, inclusive)."""
    if not isinstance(first_day, dt.date) or not isinstance(last_day, dt.date) or last_day < first_day:
        raise DomainError(errors.VALIDATION_FAILED, "a period runs from first_day to last_day")
    if (last_day - first_day).days > MAX_PERIOD_DAYS:
        raise DomainError(errors.VALIDATION_FAILED, "a certificate covers at most ten years")

    def work(s: Session) -> Certificate:
        user = s.get(User, actor.user_id)
        records = tuple(service_records_in(s, actor.user_id, first_day, last_day))
        minutes = sum(r.minutes for r in records)
        now = books.now()
        jti = secrets.token_urlsafe(12)
        code = sign_statement(books, {
            "sub": str(user.id), "jti": jti, "iat": int(now.timestamp()), "name": user.display_name,
            "from": first_day.isoformat(), "to": last_day.isoformat(), "minutes": minutes, "records": len(records)})
        s.add(ServiceCertificate(jti=jti, volunteer_id=user.id, first_day=first_day, last_day=last_day,
                                 minutes=minutes, records=len(records), issued_at=now, statement=code))
        s.flush()
        return Certificate(code, user.id, user.display_name, first_day, last_day, minutes, records, now)

    return books.run(work)


def verify_certificate(books: Books, code: Any) -> dict[str, Any]:
    """Anyone, without an account: what a genuine certificate states, or ``invalid_certificate``."""
    claims = _verified_claims(books, code)
    minutes, records = claims.get("minutes"), claims.get("records")
    if type(minutes) is not int or type(records) is not int or not isinstance(claims.get("name"), str):
        raise DomainError(errors.INVALID_CERTIFICATE)
    try:
        first, last = dt.date.fromisoformat(claims["from"]), dt.date.fromisoformat(claims["to"])
    except (TypeError, ValueError):
        raise DomainError(errors.INVALID_CERTIFICATE) from None
    return {"valid": True, "volunteer_id": int(claims["sub"]), "name": claims["name"], "first_day": first,
            "last_day": last, "minutes": minutes, "hours": round(minutes / 60, 2), "records": records,
            "issued_at": dt.datetime.fromtimestamp(claims["iat"], dt.timezone.utc), "certificate_id": claims["jti"]}


# --- PDF --------------------------------------------------------------------------------------------------

def _font() -> Path:
    font = find_cjk_font()
    if font is None:
        raise DomainError(errors.CJK_FONT_MISSING)
    return font


def certificate_pdf(cert: Certificate, verify_url: str = "") -> bytes:
    """The certificate as an A4 PDF in Chinese: the records, the total hours and the statement's QR."""
    import qrcode
    from fpdf import FPDF

    pdf = FPDF(unit="mm", format="A4")
    pdf.add_font("cjk", "", str(_font()))
    pdf.set_title("志愿服务记录证明")
    pdf.add_page()
    pdf.set_font("cjk", size=18)
    pdf.cell(0, 12, "志愿服务记录证明", align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=11)
    hours = f"{cert.minutes / 60:.2f}"
    for line in (f"志愿者：{cert.name}（编号 {cert.volunteer_id}）",
                 f"期间：{cert.first_day.isoformat()} 至 {cert.last_day.isoformat()}（北京时间）",
                 f"累计志愿服务时长：{hours} 小时（{cert.minutes} 分钟），共 {len(cert.records)} 条记录"):
        pdf.cell(0, 8, line, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("cjk", size=9)
    for w, t in zip((26, 80, 44, 20), ("日期", "服务内容", "组织单位", "时长(小时)")):
        pdf.cell(w, 7, t, border=1)
    pdf.ln()
    for r in cert.records:
        for w, t in zip((26, 80, 44, 20), (r.service_day.isoformat(), r.description[:40], r.organiser[:20],
                                          f"{r.minutes / 60:.2f}")):
            pdf.cell(w, 6, t, border=1)
        pdf.ln()
    pdf.ln(4)
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=4, border=4)
    qr.add_data(cert.code.encode("ascii"), optimize=0)
    qr.make(fit=True)
    buf = io.BytesIO()
    qr.make_image(fill_color="black", back_color="white").save(buf, format="PNG")
    buf.seek(0)
    pdf.image(buf, w=60)
    pdf.set_font("cjk", size=8)
    pdf.multi_cell(0, 5, "扫描二维码或执行 goldbean certificate verify 核验本证明；签名算法 Ed25519。"
                   + (f"\n核验网址：{verify_url}" if verify_url else ""))
    return bytes(pdf.output())
