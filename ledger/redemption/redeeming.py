"""Redeeming: a wallet code (or a bean card and its PIN) spent at a till, for an amount or catalogue items.

One transaction (``books.run`` through the idempotency store) moves the beans through ``journal.post_in``
together with the spent code, the redemption row and the stored answer, or none of them. Above the hold
threshold the beans are only held until the volunteer confirms (``holds``). The till's principal is checked
against the merchant before anything is read (``tills.acting_merchant``).
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from ledger import errors
from ledger.access.models import Merchant
from ledger.errors import DomainError
from ledger.infra.announce import Announcement
from ledger.infra.books import Books
from ledger.infra.idempotency import Answer, canonical_json, idempotent, insert_if_new
from ledger.journal.accounts import post_in
from ledger.journal.models import Account
from ledger.journal.posting import hold, transfer
from ledger.redemption import codes, devices
from ledger.redemption.catalogue import priced_items
from ledger.redemption.core import _day_bounds, setting
from ledger.redemption.models import Card, PayNumber, Redemption, SpentCode
from ledger.redemption.pins import check_card_pin
from ledger.redemption.receipts import receipt_body
from ledger.redemption.tills import TillContext, acting_merchant

# The till's hot path runs prebuilt statements with bound parameters: SQLAlchemy then compiles each once
# and skips rebuilding and re-keying a statement on every request.
_REDEMPTIONS = Redemption.__table__
_MERCHANTS = Merchant.__table__
_ACCOUNTS = Account.__table__
_SPENT = SpentCode.__table__
_NUMBERS = PayNumber.__table__
_FIND_MERCHANT_AND_WALLET = (
    select(_MERCHANTS.c.id, _MERCHANTS.c.code, _MERCHANTS.c.name, _MERCHANTS.c.status, _MERCHANTS.c.account_id,
           _MERCHANTS.c.daily_limit_beans, _ACCOUNTS.c.kind.label("wallet_kind"),
           _ACCOUNTS.c.status.label("wallet_status"), _ACCOUNTS.c.owner_ref.label("wallet_owner"))
    .select_from(_MERCHANTS.outerjoin(_ACCOUNTS, _ACCOUNTS.c.id == bindparam("wallet_id")))
    .where(_MERCHANTS.c.id == bindparam("merchant_id")))
_INSERT_REDEMPTION = _REDEMPTIONS.insert().returning(_REDEMPTIONS.c.id)
_CODE_OF_NUMBER = select(_NUMBERS.c.code).where(_NUMBERS.c.number == bindparam("number"))
NUMBER_DIGITS = 16  # the short number under a pay code's QR (``wallet.issue_payment_code``)


def _redeemed_today_stmt(column: str) -> Any:
    r = _REDEMPTIONS.c
    return select(func.coalesce(func.sum(r.amount), 0)).where(
        r[column] == bindparam("owner"), r.requested_at >= bindparam("start"), r.requested_at < bindparam("end"),
        or_(r.status == "completed", (r.status == "awaiting_confirmation") & (r.hold_expires_at > bindparam("now"))))


_REDEEMED_TODAY = {column: _redeemed_today_stmt(column) for column in ("wallet_account_id", "merchant_id")}
_OFFLINE_TODAY = (
    select(func.count(), func.coalesce(func.sum(_REDEMPTIONS.c.amount), 0)).where(
        _REDEMPTIONS.c.wallet_account_id == bindparam("owner"), _REDEMPTIONS.c.device_id.is_not(None),
        _REDEMPTIONS.c.requested_at >= bindparam("start"), _REDEMPTIONS.c.requested_at < bindparam("end"),
        or_(_REDEMPTIONS.c.status == "completed",
            (_REDEMPTIONS.c.status == "awaiting_confirmation") & (_REDEMPTIONS.c.hold_expires_at > bindparam("now")))))


@dataclass(frozen=True)
class _Sale:
    """What one redemption is: at which till, from which wallet, how much, how."""

    ctx: TillContext
    found: Any  # the merchant row joined with the wallet's kind and status
    wallet_id: int
    jti: str
    card: Card | None
    device_id: int | None
    total: int
    lines: list[dict[str, Any]]
    now: dt.datetime


def _redeemed_today(conn: Connection, books: Books, now: dt.datetime, column: str, owner: int) -> int:
    """Beans redeemed today (local day) by one wallet (``column="wallet_account_id"``) or at one merchant
    (``"merchant_id"``), holds still open included."""
    start, end = _day_bounds(books, now)
    return int(conn.execute(_REDEEMED_TODAY[column], {"owner": owner, "start": start, "end": end, "now": now})
               .scalar() or 0)


def _present_card(s: Session, books: Books, verified: codes.VerifiedCode, pin: Any, ctx: TillContext,
                  source: str | None) -> Card | DomainError:
    """The card a card code names, with its PIN checked (``ledger.redemption.pins``). A wrong PIN is *returned*
    so that the failure count, the lock after the last try and the till's throttle commit although the
    redemption is refused."""
    card = s.get(Card, verified.card_id, with_for_update=True)
    if card is None or card.token_id != verified.jti or card.wallet_account_id != verified.wallet_account_id:
        raise DomainError(errors.INVALID_CODE)
    if card.status == "revoked":
        raise DomainError(errors.CARD_REVOKED)
    if pin is None:
        raise DomainError(errors.CARD_LOCKED if card.status == "locked" else errors.PIN_REQUIRED)
    refusal = check_card_pin(s, books, books.now(), ctx, card, pin, source)
    return refusal if refusal is not None else card


def _spend_wallet_code(conn: Connection, verified: codes.VerifiedCode, found: Any, now: dt.datetime) -> None:
    """A wallet code is spent once: its ``jti`` goes into ``spent_codes`` (a second time: ``code_already_used``).
    A validly signed code for an account that is no wallet (or none at all) is ``invalid_code``, checked first:
    the spent code refers to the wallet."""
    if found.wallet_kind != "wallet":
        raise DomainError(errors.INVALID_CODE)
    spent = conn.execute(insert_if_new(conn.dialect.name, _SPENT, ("jti",)), {
        "jti": verified.jti, "wallet_account_id": verified.wallet_account_id, "created_at": now}).scalar()
    if spent is None:
        raise DomainError(errors.CODE_ALREADY_USED)


def is_pay_number(code: Any) -> bool:
    """Whether a till sent the short number a cashier types (16 digits; spaces allowed) instead of a code."""
    if not isinstance(code, str) or len(code) > 40:
        return False
    digits = code.replace(" ", "").replace("-", "")
    return len(digits) == NUMBER_DIGITS and digits.isdigit()


def _code_of_number(conn: Connection, number: str) -> str:
    """The wallet code a short number stands for (kept until pruned; the code itself says when it expires)."""
    digits = number.replace(" ", "").replace("-", "")
    code = conn.execute(_CODE_OF_NUMBER, {"number": digits}).scalar()
    if code is None:
        raise DomainError(errors.INVALID_CODE, "No payment code has this number; check the digits.")
    return str(code)


def read_code(s: Session, books: Books, code: Any, now: dt.datetime) -> codes.VerifiedCode:
    """The code a till sent, checked: a short number stands for its wallet code; an offline code is checked
    against its phone's key (``devices``), the others against the server's keys (``codes``)."""
    if is_pay_number(code):
        code = _code_of_number(s.connection(), code)
    if codes.code_typ(code) == codes.OFFLINE_TYP:
        return devices.verify_offline_code(s, books, code, now)
    return codes.verify_code(books, code)


def _check_merchant_and_wallet(found: Any) -> None:
    if found.status != "active":
        raise DomainError(errors.MERCHANT_SUSPENDED)
    if found.wallet_kind != "wallet":
        raise DomainError(errors.INVALID_CODE)
    if found.wallet_status != "open":
        raise DomainError(errors.WALLET_FROZEN)


def _check_daily_limits(conn: Connection, books: Books, sale: _Sale) -> None:
    """Read after posting, under the accounts' locks, so that the limits hold under concurrency (this
    redemption's own row is already counted)."""
    limit = setting(books, "volunteer_daily_limit")
    if limit is not None and _redeemed_today(conn, books, sale.now, "wallet_account_id", sale.wallet_id) > int(limit):
        raise DomainError(errors.LIMIT_EXCEEDED, "The volunteer's daily limit would be exceeded.",
                          limit="volunteer")
    m_limit = sale.found.daily_limit_beans or setting(books, "merchant_daily_limit")
    if m_limit is not None and _redeemed_today(conn, books, sale.now, "merchant_id", sale.found.id) > int(m_limit):
        raise DomainError(errors.LIMIT_EXCEEDED, "The merchant's daily limit would be exceeded.",
                          limit="merchant")
    if sale.device_id is not None:
        start, end = _day_bounds(books, sale.now)
        count, beans = conn.execute(_OFFLINE_TODAY, {"owner": sale.wallet_id, "start": start, "end": end,
                                                     "now": sale.now}).one()
        rules = books.settings.redemption
        if count > rules.offline_daily_codes:
            raise DomainError(errors.OFFLINE_LIMIT_EXCEEDED, limit="codes", allowed=rules.offline_daily_codes)
        if beans > rules.offline_daily_beans:
            raise DomainError(errors.OFFLINE_LIMIT_EXCEEDED, limit="beans", allowed=rules.offline_daily_beans)


def _record_sale(s: Session, books: Books, sale: _Sale) -> dict[str, Any]:
    """The redemption row and its transfer (or hold), then the daily limits; the receipt."""
    conn = s.connection()
    found, now, ctx = sale.found, sale.now, sale.ctx
    held = sale.total > int(setting(books, "redemption_hold_threshold"))
    timeout = int(setting(books, "redemption_hold_timeout_s"))
    transfer_key = f"redeem:{secrets.token_hex(12)}"
    method = "card" if sale.card is not None else ("device_code" if sale.device_id is not None else "wallet_code")
    status = "awaiting_confirmation" if held else "completed"
    hold_expires_at = now + dt.timedelta(seconds=timeout) if held else None
    redemption_id = conn.execute(_INSERT_REDEMPTION, {
        "merchant_id": found.id, "wallet_account_id": sale.wallet_id, "amount": sale.total, "refunded": 0,
        "items": canonical_json(sale.lines), "method": method,
        "card_id": sale.card.id if sale.card is not None else None, "device_id": sale.device_id, "code_jti": sale.jti, "status": status,
        "transfer_key": transfer_key, "actor": ctx.actor, "till_id": ctx.till_id, "requested_at": now,
        "completed_at": None if held else now, "hold_expires_at": hold_expires_at, "created_at": now,
    }).scalar_one()
    reason, reference = f"兑换 redemption at {found.code}", f"redemption:{redemption_id}"
    if held:
        req = hold(transfer_key, "redeem", sale.wallet_id, found.account_id, sale.total, timeout, actor=ctx.actor,
                   reason=reason, reference=reference)
    else:
        req = transfer(transfer_key, "redeem", sale.wallet_id, found.account_id, sale.total, actor=ctx.actor,
                       reason=reason, reference=reference)
    # posting locks both accounts (id order) and refuses what the wallet cannot pay
    post_in(s, books, [req])
    _check_daily_limits(conn, books, sale)
    owner = found.wallet_owner or ""
    if books.listeners and owner.startswith("user:"):  # the volunteer's open app hears of it (ledger.infra.announce)
        books.announce(s, Announcement("payment", int(owner[5:]), sale.total, f"redemption:{redemption_id}"))
    return receipt_body(redemption_id, status, sale.total, sale.lines, found, now, method, hold_expires_at)


def redeem(books: Books, ctx: TillContext, *, code: str, idempotency_key: str, amount: int | None = None,
           items: list[dict[str, Any]] | None = None, pin: str | None = None, source: str | None = None) -> Answer:
    """Spend beans from the wallet a code names at the till's merchant (see docs/redemption.md).

    A receipt; above the hold threshold the receipt says ``awaiting_confirmation`` and the beans
    are only held until the volunteer confirms in the wallet (or the hold times out). ``ctx``'s principal
    must serve at its merchant (``permission_denied``)."""
    if (amount is None) == (items is None):
        raise DomainError(errors.VALIDATION_FAILED, "send either amount or items")
    if amount is not None and (type(amount) is not int or amount < 1):
        raise DomainError(errors.INVALID_AMOUNT)
    merchant_id = acting_merchant(ctx)
    # the PIN is not part of the request's fingerprint: a retry with another PIN gets the stored receipt
    payload = {"op": "redeem", "merchant": merchant_id, "code": code, "amount": amount, "items": items}

    def work(s: Session) -> dict[str, Any] | DomainError:
        now = books.now()
        verified = read_code(s, books, code, now)
        conn = s.connection()  # Core from here on: this is the till's hot path
        found = conn.execute(_FIND_MERCHANT_AND_WALLET, {
            "merchant_id": merchant_id, "wallet_id": verified.wallet_account_id}).one_or_none()
        if found is None:
            raise DomainError(errors.NOT_FOUND_ERR, merchant_id=merchant_id)
        card: Card | None = None
        if verified.typ == codes.CARD_TYP:
            presented = _present_card(s, books, verified, pin, ctx, source)
            if isinstance(presented, DomainError):
                return presented
            card = presented
        else:
            _spend_wallet_code(conn, verified, found, now)
        _check_merchant_and_wallet(found)
        total, lines = priced_items(s, found.id, items) if items is not None else (amount, [])
        assert total is not None
        return _record_sale(s, books, _Sale(ctx, found, verified.wallet_account_id, verified.jti, card,
                                            verified.device_id, total, lines, now))

    return idempotent(books, f"merchant:{merchant_id}", idempotency_key, payload, work)


def redeem_at_till(books: Books, ctx: TillContext, source: str | None, *, pin: str | None, **kwargs: Any) -> Answer:
    """``redeem`` for a till at ``source`` (the address is logged with every PIN typed)."""
    return redeem(books, ctx, pin=pin, source=source, **kwargs)
