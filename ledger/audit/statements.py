"""Account statements (对账单): an account's entries over a period, with opening and closing balances.

Every entry carries ``balance_after``, so a period needs no scan from the beginning of time: the
opening balance is the ``balance_after`` of the account's last entry before the period, the closing
balance that of its last entry in the period.

Which entries belong to a period is decided once, by position in the account's chain: the period
covers the entries after the last one created before ``start`` up to the last one created before
``end``. So ``opening + sum(changes) == closing`` holds by construction, and the closing balance is
exactly the account's balance at the end of the period as the trial balance sees it
(``ledger.reports.balances_at``) even when two concurrent transactions committed out of clock order.

Dates are calendar days in the district's time zone (``books.calendar``; Kunming is UTC+8, no daylight saving):
``--from 2026-11-01 --to 2026-11-30`` covers 2026-11-01 00:00 to 2026-12-01 00:00 local time.

Output: CSV (UTF-8 with a byte-order mark so that Excel in Chinese opens it; fixed columns), JSON, PDF
(fpdf2 with a CJK TrueType font found at run time; see ``find_cjk_font``).
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import String, func, select, type_coerce
from sqlalchemy.orm import Session, aliased

from ledger import errors
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.infra.csvsafe import SafeCsvWriter
from ledger.infra.db import ReadPoint, read_point_in
from ledger.infra.fonts import find_cjk_font
from ledger.infra.settings import Calendar
from ledger.journal.models import Account, Entry, Transfer

# China Standard Time: the district's calendar days

STATEMENT_FORMATS = ("csv", "json", "pdf")

CSV_COLUMNS = (
    "date", "time", "entry_id", "seq", "transfer_id", "transfer_key", "kind", "phase", "side",
    "counterparty_id", "counterparty_code", "amount", "change", "pending_change", "balance_after",
    "reference", "actor", "reason",
)



# --- time ---------------------------------------------------------------------------------------------

def parse_day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except (TypeError, ValueError):
        raise DomainError(errors.VALIDATION_FAILED, f"not a date (YYYY-MM-DD): {text!r}") from None


def parse_moment(text: str, calendar: Calendar) -> dt.datetime:
    """``YYYY-MM-DD`` (the end of that local day) or an ISO timestamp (local time when it names no zone);
    the answer is a UTC instant, whatever offset the text gave."""
    try:
        if len(text) == 10:
            end = calendar.day_start(dt.date.fromisoformat(text) + dt.timedelta(days=1))
            return end - dt.timedelta(microseconds=1)
        moment = dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise DomainError(errors.VALIDATION_FAILED,
                          f"not a moment (YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][+08:00]): {text!r}") from None
    return calendar.parse_local(moment).astimezone(dt.timezone.utc)


def as_utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        return moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc)


def created_before(session: Session, column: Any, moment: dt.datetime) -> Any:
    """``column < moment`` for a ``created_at`` column, exact on both databases.

    SQLite stores the server default as text ``YYYY-MM-DD HH:MM:SS`` (UTC, no fraction) while
    SQLAlchemy binds ``YYYY-MM-DD HH:MM:SS.ffffff``; comparing those as text would put a row stamped
    exactly at a whole second before it. So SQLite gets the bound written the way the rows are.
    """
    moment = as_utc(moment)
    if session.get_bind().dialect.name == "sqlite":
        fmt = "%Y-%m-%d %H:%M:%S" if moment.microsecond == 0 else "%Y-%m-%d %H:%M:%S.%f"
        return type_coerce(column, String) < moment.strftime(fmt)
    return column < moment


def created_at_or_before(session: Session, column: Any, moment: dt.datetime) -> Any:
    """``column <= moment`` (see ``created_before``)."""
    moment = as_utc(moment)
    if session.get_bind().dialect.name == "sqlite":
        # "<= 12:00:00" must include "12:00:00" and "12:00:00.000000" but not "12:00:00.5"
        fmt = "%Y-%m-%d %H:%M:%S.%f"
        return type_coerce(column, String) <= moment.strftime(fmt)
    return column <= moment


# --- the account ----------------------------------------------------------------------------------------

def resolve_account(session: Session, ref: str | int) -> Account:
    """An account named by id, account code, username (that person's wallet) or merchant code."""
    text = str(ref).strip()
    if not text:
        raise DomainError(errors.VALIDATION_FAILED, "name an account")
    if text.isdigit():
        acc = session.get(Account, int(text))
        if acc is not None:
            return acc
    acc = session.scalar(select(Account).where(Account.code == text))
    if acc is not None:
        return acc
    try:  # the identity layer: usernames and merchant codes
        from ledger.access.models import Merchant, User
    except ImportError:  # pragma: no cover - before the people tables existed
        Merchant = User = None  # type: ignore[assignment,misc]
    if User is not None:
        user_id = session.scalar(select(User.id).where(User.username == text))
        if user_id is not None:
            acc = session.scalar(select(Account).where(Account.owner_ref == f"user:{user_id}",
                                                       Account.kind == "wallet").order_by(Account.id).limit(1))
            if acc is not None:
                return acc
        account_id = session.scalar(select(Merchant.account_id).where(Merchant.code == text))
        if account_id is not None:
            acc = session.get(Account, account_id)
            if acc is not None:
                return acc
    raise DomainError(errors.ACCOUNT_NOT_FOUND, f"no account, user or merchant {text!r}", account=text)


# --- the statement --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StatementLine:
    entry_id: int
    seq: int
    created_at: dt.datetime
    transfer_id: int
    transfer_key: str
    kind: str
    phase: str
    side: str  # D: beans left the account; C: beans came in
    counterparty_id: int
    counterparty_code: str
    amount: int  # the transfer's amount
    change: int  # signed change of the balance (credits +, debits -)
    pending_change: int  # change of this side's pending total: a hold adds, its resolution removes
    balance_after: int
    reference: str | None
    actor: str
    reason: str


@dataclass(frozen=True)
class Statement:
    account_id: int
    account_code: str
    account_kind: str
    account_name: str
    owner_ref: str | None
    from_day: dt.date
    to_day: dt.date
    start: dt.datetime  # UTC, inclusive
    end: dt.datetime  # UTC, exclusive
    opening_balance: int
    closing_balance: int
    total_in: int
    total_out: int
    lines: list[StatementLine] = field(default_factory=list)
    generated_at: dt.datetime | None = None
    calendar: Calendar = field(default_factory=Calendar)  # whose local days the period and the lines use
    read: ReadPoint | None = None  # where and as of when it was read (a standby lags the primary)

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body.pop("calendar")
        body["read"] = self.read.to_dict() if self.read is not None else None
        for key in ("start", "end", "generated_at"):
            body[key] = body[key].isoformat() if body[key] else None
        body["from_day"], body["to_day"] = self.from_day.isoformat(), self.to_day.isoformat()
        body["timezone"] = self.calendar.label
        for line in body["lines"]:
            line["created_at"] = as_utc(line["created_at"]).isoformat()
        return body


MAX_STATEMENT_DAYS = 3660


def statement_in(session: Session, ref: str | int, from_day: dt.date, to_day: dt.date,
                 now: dt.datetime | None = None, *, calendar: Calendar) -> Statement:
    if to_day < from_day:
        raise DomainError(errors.VALIDATION_FAILED, "the period ends before it starts")
    if (to_day - from_day).days > MAX_STATEMENT_DAYS:
        raise DomainError(errors.VALIDATION_FAILED, "a statement covers at most ten years")
    acc = resolve_account(session, ref)
    start, end = calendar.day_start(from_day), calendar.day_start(to_day + dt.timedelta(days=1))
    opening_seq = _last_seq_before(session, acc.id, start)
    closing_seq = max(opening_seq, _last_seq_before(session, acc.id, end))
    opening = _balance_at_seq(session, acc.id, opening_seq)

    counter = aliased(Account)
    rows = session.execute(
        select(Entry.id, Entry.seq, Entry.created_at, Entry.side, Entry.pending_delta, Entry.posted_delta,
               Entry.balance_after, Transfer.id.label("transfer_id"), Transfer.transfer_key, Transfer.kind,
               Transfer.phase, Transfer.amount, Transfer.reference, Transfer.actor, Transfer.reason,
               Transfer.debit_account_id, Transfer.credit_account_id, counter.id.label("cp_id"),
               counter.code.label("cp_code"))
        .join(Transfer, Transfer.id == Entry.transfer_id)
        .join(counter, counter.id == _other_side())
        .where(Entry.account_id == acc.id, Entry.seq > opening_seq, Entry.seq <= closing_seq)
        .order_by(Entry.seq)
    ).all()
    lines = []
    total_in = total_out = 0
    for r in rows:
        sign = 1 if r.side == "C" else -1
        change = sign * r.posted_delta
        if change > 0:
            total_in += change
        else:
            total_out -= change
        lines.append(StatementLine(
            entry_id=r.id, seq=r.seq, created_at=as_utc(r.created_at), transfer_id=r.transfer_id,
            transfer_key=r.transfer_key, kind=r.kind, phase=r.phase, side=r.side, counterparty_id=r.cp_id,
            counterparty_code=r.cp_code, amount=r.amount, change=change,
            pending_change=r.pending_delta, balance_after=r.balance_after,
            reference=r.reference, actor=r.actor, reason=r.reason or "",
        ))
    closing = lines[-1].balance_after if lines else opening
    return Statement(acc.id, acc.code, acc.kind, acc.name, acc.owner_ref, from_day, to_day, start, end,
                     opening, closing, total_in, total_out, lines, now, calendar)


def _other_side() -> Any:
    from sqlalchemy import case

    return case((Entry.side == "D", Transfer.credit_account_id), else_=Transfer.debit_account_id)


def account_statement(books: Books, ref: str | int, from_day: dt.date, to_day: dt.date) -> Statement:
    """The statement of the account named by ``ref`` (id, code, username or merchant code), read through
    ``Books.read`` (a standby when configured), with the moment it was read as of."""

    def work(s: Session) -> Statement:
        point = read_point_in(s)
        stmt = statement_in(s, ref, from_day, to_day, books.now(), calendar=books.calendar)
        return replace(stmt, read=point)

    return books.read(work)


def _last_seq_before(session: Session, account_id: int, moment: dt.datetime) -> int:
    seq = session.scalar(select(func.max(Entry.seq)).where(
        Entry.account_id == account_id, created_before(session, Entry.created_at, moment)))
    return int(seq or 0)


def _balance_at_seq(session: Session, account_id: int, seq: int) -> int:
    if seq == 0:
        return 0
    return int(session.scalar(select(Entry.balance_after).where(Entry.account_id == account_id, Entry.seq == seq)))


# --- CSV and JSON ------------------------------------------------------------------------------------------

def _local(stmt: Statement, moment: dt.datetime) -> dt.datetime:
    return stmt.calendar.local(as_utc(moment))


def statement_csv(stmt: Statement) -> bytes:
    """UTF-8 with a byte-order mark; the columns of ``CSV_COLUMNS``; opening and closing as rows."""
    buf = io.StringIO()
    w = SafeCsvWriter(buf)  # every text cell (reference, key, counterparty, actor, reason) is neutralised
    w.writerow(CSV_COLUMNS)
    blank = [""] * len(CSV_COLUMNS)

    def summary(label: str, balance: int, day: dt.date) -> list[Any]:
        row = list(blank)
        row[0] = day.isoformat()
        row[CSV_COLUMNS.index("kind")] = label
        row[CSV_COLUMNS.index("balance_after")] = balance
        return row

    w.writerow(summary("opening", stmt.opening_balance, stmt.from_day))
    for ln in stmt.lines:
        local = _local(stmt, ln.created_at)
        w.writerow([local.date().isoformat(), local.strftime("%H:%M:%S"), ln.entry_id, ln.seq, ln.transfer_id,
                    ln.transfer_key, ln.kind, ln.phase, ln.side, ln.counterparty_id, ln.counterparty_code,
                    ln.amount, ln.change, ln.pending_change, ln.balance_after, ln.reference or "", ln.actor,
                    ln.reason])
    w.writerow(summary("closing", stmt.closing_balance, stmt.to_day))
    return b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8")


def statement_json(stmt: Statement) -> bytes:
    import json

    return json.dumps(stmt.to_dict(), ensure_ascii=False, indent=1).encode("utf-8")


# --- PDF ------------------------------------------------------------------------------------------------

KIND_LABELS = {
    "donate": "捐赠", "allocate": "下拨", "award": "奖励", "redeem": "兑换", "refund": "退还",
    "settle": "结算", "expire": "过期", "reverse": "冲正", "adjust": "调整",
}
ACCOUNT_KIND_LABELS = {
    "fund": "金豆基金", "donations": "捐赠", "budget": "预算", "wallet": "钱包", "merchant": "商家",
    "payout": "结算付款", "expiry": "过期", "adjustment": "调整",
}


def statement_pdf(stmt: Statement, font_path: Path | None = None) -> bytes:
    """The statement as an A4 PDF with Chinese headings; refuses clearly when no CJK font is installed."""
    font = font_path or find_cjk_font()
    if font is None:
        raise DomainError(errors.CJK_FONT_MISSING,
                          "no Chinese font found: run make install (it brings one), install "
                          "fonts-wqy-microhei, or set GOLDBEAN_CJK_FONT to a .ttf/.ttc file")
    from fpdf import FPDF

    # fontTools (fpdf2's font subsetter) logs a dozen INFO lines per PDF; only its warnings matter
    logging.getLogger("fontTools").setLevel(logging.WARNING)
    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_auto_page_break(True, margin=12)
    try:
        pdf.add_font("cjk", "", str(font))
    except Exception as exc:  # a broken or unusable font file
        raise DomainError(errors.CJK_FONT_MISSING, f"cannot use the font {font}: {exc}") from None
    pdf.set_title(f"对账单 {stmt.account_code}")
    pdf.add_page()
    pdf.set_font("cjk", size=15)
    pdf.cell(0, 9, "金豆对账单 Gold Bean account statement", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=10)
    kind = ACCOUNT_KIND_LABELS.get(stmt.account_kind, stmt.account_kind)
    header = [
        f"账户 Account: {stmt.account_code} (#{stmt.account_id}, {kind} {stmt.account_kind}) {stmt.account_name}",
        f"期间 Period: {stmt.from_day.isoformat()} 至 {stmt.to_day.isoformat()} (本地时间 {stmt.calendar.label})",
        f"期初余额 Opening balance: {stmt.opening_balance} 金豆    期末余额 Closing balance: "
        f"{stmt.closing_balance} 金豆",
        f"收入 In: {stmt.total_in}    支出 Out: {stmt.total_out}    笔数 Entries: {len(stmt.lines)}",
    ]
    if stmt.read is not None and stmt.read.source == "standby":
        as_of = stmt.calendar.format(stmt.read.as_of, "%Y-%m-%d %H:%M:%S") if stmt.read.as_of else "?"
        header.append(f"数据截至 Read as of: {as_of} (备用库 read from a standby: later entries may be missing)")
    for text in header:
        pdf.cell(0, 6, text, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    widths = (32, 16, 22, 50, 22, 22, 26, 70)
    titles = ("时间 Time", "序号 Seq", "类型 Kind", "对方账户 Counterparty", "金额 Change", "余额 Balance",
              "经办 Actor", "摘要 Reference / reason")
    pdf.set_font("cjk", size=8)

    def head() -> None:
        for w, t in zip(widths, titles):
            pdf.cell(w, 6, t, border=1)
        pdf.ln()

    head()
    for ln in stmt.lines:
        if pdf.will_page_break(6):
            pdf.add_page()
            head()
        local = _local(stmt, ln.created_at).strftime("%Y-%m-%d %H:%M")
        kind_label = f"{KIND_LABELS.get(ln.kind, ln.kind)} {ln.kind}"
        if ln.phase != "single":
            kind_label += f"/{ln.phase}"
        note = " ".join(x for x in (ln.reference or "", ln.reason) if x)
        cells = (local, str(ln.seq), kind_label, _fit(ln.counterparty_code, 30), f"{ln.change:+d}",
                 str(ln.balance_after), _fit(ln.actor, 16), _fit(note, 44))
        for w, t in zip(widths, cells):
            pdf.cell(w, 6, t, border=1)
        pdf.ln()
    pdf.ln(3)
    pdf.set_font("cjk", size=9)
    pdf.cell(0, 6, f"期初 {stmt.opening_balance} + 收入 {stmt.total_in} - 支出 {stmt.total_out} = 期末 "
                   f"{stmt.closing_balance}", new_x="LMARGIN", new_y="NEXT")
    if stmt.generated_at is not None:
        generated = _local(stmt, stmt.generated_at).strftime("%Y-%m-%d %H:%M:%S")
        pdf.cell(0, 6, f"生成时间 Generated: {generated} ({stmt.calendar.label})",
                 new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_statement(stmt: Statement, fmt: str) -> bytes:
    if fmt == "csv":
        return statement_csv(stmt)
    if fmt == "json":
        return statement_json(stmt)
    if fmt == "pdf":
        return statement_pdf(stmt)
    raise DomainError(errors.VALIDATION_FAILED, f"format must be one of {', '.join(STATEMENT_FORMATS)}")
