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
from ledger.errors import DomainError
from ledger.infra.announce import Announcement
from ledger.infra.books import Books
from ledger.infra.db import Alongside
from ledger.infra.idempotency import Answer, canonical_json, idempotent
from ledger.journal.accounts import post_in
from ledger.journal.posting import hold, transfer
from ledger.redemption import codes, devices, till_sql
from ledger.redemption.catalogue import priced_items
from ledger.redemption.core import _day_bounds, setting
from ledger.redemption.models import Card, PayNumber, Redemption
from ledger.redemption.pins import check_card_pin
from ledger.redemption.receipts import receipt_body
from ledger.redemption.tills import TillContext, acting_merchant

_REDEMPTIONS = Redemption.__table__
_NUMBERS = PayNumber.__table__
_CODE_OF_NUMBER = select(_NUMBERS.c.code).where(_NUMBERS.c.number == bindparam("number"))
NUMBER_DIGITS = 16  # the short number under a pay code's QR (``wallet.issue_payment_code``)
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
    found: till_sql.Found  # the merchant row joined with the wallet's kind and status
    wallet_id: int
    jti: str
    card: Card | None
    device_id: int | None  # an offline code: the phone that signed it
    total: int
    lines: list[dict[str, Any]]
    now: dt.datetime
    transfer_key: str


def _held(books: Books, total: int) -> bool:
    return total > int(setting(books, "redemption_hold_threshold"))


def _redemption_row(books: Books, sale: _Sale) -> dict[str, Any]:
    """The redemption's row (``till_sql.REDEMPTION_COLUMNS``): completed, or awaiting the volunteer above the
    hold threshold."""
    held, now = _held(books, sale.total), sale.now
    return {
        "merchant_id": sale.found.id, "wallet_account_id": sale.wallet_id, "amount": sale.total, "refunded": 0,
        "items": canonical_json(sale.lines), "method": _method(sale),
        "card_id": sale.card.id if sale.card is not None else None, "device_id": sale.device_id,
        "code_jti": sale.jti,
        "status": "awaiting_confirmation" if held else "completed", "transfer_key": sale.transfer_key,
        "actor": sale.ctx.actor, "till_id": sale.ctx.till_id, "requested_at": now,
        "completed_at": None if held else now,
        "hold_expires_at": now + dt.timedelta(seconds=int(setting(books, "redemption_hold_timeout_s"))) if held
        else None,
        "created_at": now,
    }


def _method(sale: _Sale) -> str:
    return "card" if sale.card is not None else ("device_code" if sale.device_id is not None else "wallet_code")


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


def _check_spent(spent: till_sql.Spent, merchant_id: int) -> None:
    """A wallet code is spent once: its ``jti`` goes into ``spent_codes`` (a second time: ``code_already_used``).
    A validly signed code for an account that is no wallet (or none at all) is ``invalid_code``, checked first:
    the spent code refers to the wallet."""
    if spent.found is None:
        raise DomainError(errors.NOT_FOUND_ERR, merchant_id=merchant_id)
    if spent.found.wallet_kind != "wallet":
        raise DomainError(errors.INVALID_CODE)
    if not spent.spent:
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


def _read_without_books(books: Books, code: Any) -> codes.VerifiedCode | DomainError | None:
    """The code checked before the transaction, when that needs no row (a code signed by the server's keys):
    its refusal is returned, to be raised once the idempotency key is claimed (a retry with a code that has
    expired since gets its receipt). ``None``: a short number or an offline code, read in the transaction."""
    if is_pay_number(code):
        return None
    try:
        if codes.code_typ(code) == codes.OFFLINE_TYP:
            return None
        return codes.verify_code(books, code)
    except DomainError as exc:
        return exc


def _check_merchant_and_wallet(found: Any) -> None:
    if found.status != "active":
        raise DomainError(errors.MERCHANT_SUSPENDED)
    if found.wallet_kind != "wallet":
        raise DomainError(errors.INVALID_CODE)
    if found.wallet_status != "open":
        raise DomainError(errors.WALLET_FROZEN)


def _limits(books: Books, sale: _Sale) -> tuple[int | None, int | None, dict[str, int]]:
    """The volunteer's and the merchant's daily limits (None: none) and whose redemptions to sum."""
    limit = setting(books, "volunteer_daily_limit")
    m_limit = sale.found.daily_limit_beans or setting(books, "merchant_daily_limit")
    owners = {}
    if limit is not None:
        owners["wallet_account_id"] = sale.wallet_id
    if m_limit is not None:
        owners["merchant_id"] = sale.found.id
    return limit, m_limit, owners


def _check_daily_limits(books: Books, sale: _Sale, read: Alongside | None) -> None:
    """The day's sums were read with the accounts' lock (``post_in(..., alongside=...)``), so that the limits
    hold under concurrency (this redemption's own row is already counted); checked after posting."""
    limit, m_limit, owners = _limits(books, sale)
    if read is None:
        return
    redeemed = till_sql.redeemed(read, owners)
    if limit is not None and redeemed["wallet_account_id"] > int(limit):
        raise DomainError(errors.LIMIT_EXCEEDED, "The volunteer's daily limit would be exceeded.",
                          limit="volunteer")
    if m_limit is not None and redeemed["merchant_id"] > int(m_limit):
        raise DomainError(errors.LIMIT_EXCEEDED, "The merchant's daily limit would be exceeded.",
                          limit="merchant")


def _check_offline_limits(conn: Connection, books: Books, sale: _Sale) -> None:
    """A phone's offline codes have their own daily caps (read, like the others, under the accounts' locks)."""
    if sale.device_id is None:
        return
    start, end = _day_bounds(books, sale.now)
    count, beans = conn.execute(_OFFLINE_TODAY, {"owner": sale.wallet_id, "start": start, "end": end,
                                                 "now": sale.now}).one()
    rules = books.settings.redemption
    if count > rules.offline_daily_codes:
        raise DomainError(errors.OFFLINE_LIMIT_EXCEEDED, limit="codes", allowed=rules.offline_daily_codes)
    if beans > rules.offline_daily_beans:
        raise DomainError(errors.OFFLINE_LIMIT_EXCEEDED, limit="beans", allowed=rules.offline_daily_beans)


def _record_sale(s: Session, books: Books, sale: _Sale, redemption_id: int | None) -> dict[str, Any]:
    """The redemption row (unless written with the spent code) and its transfer (or hold), then the daily
    limits; the receipt."""
    conn = s.connection()
    row = _redemption_row(books, sale)
    if redemption_id is None:
        redemption_id = till_sql.write(conn, row)
    found, held = sale.found, row["status"] == "awaiting_confirmation"
    reason, reference = f"兑换 redemption at {found.code}", f"redemption:{redemption_id}"
    if held:
        req = hold(sale.transfer_key, "redeem", sale.wallet_id, found.account_id, sale.total,
                   int(setting(books, "redemption_hold_timeout_s")), actor=sale.ctx.actor, reason=reason,
                   reference=reference)
    else:
        req = transfer(sale.transfer_key, "redeem", sale.wallet_id, found.account_id, sale.total,
                       actor=sale.ctx.actor, reason=reason, reference=reference)
    owners = _limits(books, sale)[2]
    read = till_sql.redeemed_today(conn, owners, *_day_bounds(books, sale.now), sale.now) if owners else None
    # posting locks both accounts (id order), the day's sums are read once it holds them, and it refuses
    # what the wallet cannot pay
    post_in(s, books, [req], alongside=read)
    _check_daily_limits(books, sale, read)
    _check_offline_limits(conn, books, sale)
    owner = found.wallet_owner or ""
    if books.listeners and owner.startswith("user:"):  # the volunteer's open app hears of it (ledger.infra.announce)
        books.announce(s, Announcement("payment", int(owner[5:]), sale.total, f"redemption:{redemption_id}"))
    return receipt_body(redemption_id, row["status"], sale.total, sale.lines, found, sale.now, row["method"],
                        row["hold_expires_at"])


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

    now = books.now()
    transfer_key = f"redeem:{secrets.token_hex(12)}"
    early_read = _read_without_books(books, code)
    early = None
    if isinstance(early_read, codes.VerifiedCode) and early_read.typ == codes.WALLET_TYP:
        # spending the code (and writing an amount sale's row) travels with the key's claim: one round trip
        planned = _planned_sale(books, ctx, merchant_id, early_read, amount, now, transfer_key)
        early = till_sql.spend_alongside(books.engine.dialect, merchant_id, early_read.wallet_account_id,
                                         early_read.jti, now, planned)

    def work(s: Session) -> dict[str, Any] | DomainError:
        if isinstance(early_read, DomainError):
            raise early_read
        verified = early_read if early_read is not None else read_code(s, books, code, now)
        conn = s.connection()  # the driver's cursor from here on: this is the till's hot path
        card: Card | None = None
        redemption_id = None
        if verified.typ == codes.CARD_TYP:
            found = till_sql.find(conn, merchant_id, verified.wallet_account_id)
            if found is None:
                raise DomainError(errors.NOT_FOUND_ERR, merchant_id=merchant_id)
            presented = _present_card(s, books, verified, pin, ctx, source)
            if isinstance(presented, DomainError):
                return presented
            card = presented
        else:
            spent = till_sql.spent_from(early) if early is not None else till_sql.spend(
                conn, merchant_id, verified.wallet_account_id, verified.jti, now,
                _planned_sale(books, ctx, merchant_id, verified, amount, now, transfer_key))
            _check_spent(spent, merchant_id)
            found, redemption_id = spent.found, spent.redemption_id
        _check_merchant_and_wallet(found)
        total, lines = priced_items(s, found.id, items) if items is not None else (amount, [])
        assert total is not None and found is not None
        return _record_sale(s, books, _Sale(ctx, found, verified.wallet_account_id, verified.jti, card,
                                            verified.device_id, total, lines, now, transfer_key), redemption_id)

    return idempotent(books, f"merchant:{merchant_id}", idempotency_key, payload, work, alongside=early)


def _planned_sale(books: Books, ctx: TillContext, merchant_id: int, verified: codes.VerifiedCode,
                  amount: int | None, now: dt.datetime, transfer_key: str) -> dict[str, Any] | None:
    """A sale for an amount is known in full before anything is read: its row goes with the spent code."""
    if amount is None:
        return None
    sale = _Sale(ctx, till_sql.Found(merchant_id, "", "", "", 0, None, None, None, None),
                 verified.wallet_account_id, verified.jti, None, verified.device_id, amount, [], now, transfer_key)
    return _redemption_row(books, sale)


def redeem_at_till(books: Books, ctx: TillContext, source: str | None, *, pin: str | None, **kwargs: Any) -> Answer:
    """``redeem`` for a till at ``source`` (the address is logged with every PIN typed)."""
    return redeem(books, ctx, pin=pin, source=source, **kwargs)
