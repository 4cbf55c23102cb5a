"""Redemption use cases: tills, the catalogue, bean cards, redeeming a code, confirming a hold, refunds,
and the wallet's own view.

Each use case opens ONE transaction (``books.run``) and moves beans only through ``journal.post_in``
inside it, so that its own rows (the spent code, the redemption, the idempotency record) commit
together with the transfer or not at all.

Order of locks in every write here (PostgreSQL): the idempotency record, then the spent code, then the
card or redemption row, then the accounts in id order (``post_batch``). On SQLite ``BEGIN IMMEDIATE``
serializes writers anyway.

Refunds are ``refund`` transfers from the merchant's account back to the wallet (not reversals of the
redeem transfer), bounded by ``redemptions.refunded`` which is read and raised under the row lock: a
refund is a business event of its own, with its own window, and a reversal stays what it is, the
correction of a mistake.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import bindparam, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from ledger import errors
from ledger.access import security
from ledger.access.models import Merchant, RoleGrant, SecurityEvent, User
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.infra.db import utc_from_db
from ledger.journal.accounts import post_in
from ledger.journal.models import Account, Transfer
from ledger.journal.posting import hold, post_hold, transfer, void_hold
from ledger.redemption import codes
from ledger.redemption.models import (
    Card,
    CatalogueItem,
    IdempotencyRecord,
    Redemption,
    Refund,
    SpentCode,
    Till,
)

# --- settings (``books.settings`` overrides each) -----------------------------------------------------
DEFAULTS: dict[str, Any] = {
    "redemption_hold_threshold": 200,  # above this many beans a redemption waits for the volunteer
    "redemption_hold_timeout_s": 600,  # unconfirmed holds void themselves after this
    "volunteer_daily_limit": 1000,  # beans one wallet may redeem per local day (None: no limit)
    "merchant_daily_limit": None,  # default for merchants without their own daily_limit_beans
    "refund_window_days": 14,
    "max_pin_tries": 5,
    "utc_offset_hours": 8,  # Kunming: days and settlement periods are local (UTC+8, no DST)
    "idempotency_retention_days": 30,  # a retry with the same Idempotency-Key gets the stored answer this long
    "spent_code_retention_s": 86_400,  # spent wallet codes are forgotten after this (ledger.housekeeping)
}
_IDEMPOTENCY = IdempotencyRecord.__table__
_REDEMPTIONS = Redemption.__table__
_MERCHANTS = Merchant.__table__
_ACCOUNTS = Account.__table__
MAX_QTY = 1000
MAX_ITEMS = 50
TILL_KEY_PREFIX = "gbtill_"
PIN_RE = re.compile(r"^[0-9]{4,8}$")
_PIN_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def setting(books: Books, name: str) -> Any:
    return books.settings.get(name, DEFAULTS[name])


def local_tz(books: Books) -> dt.timezone:
    return dt.timezone(dt.timedelta(hours=int(setting(books, "utc_offset_hours"))))


def _iso(value: dt.datetime | None) -> str | None:
    value = utc_from_db(value)
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z") if value else None


# The till's hot path runs prebuilt statements with bound parameters: SQLAlchemy then compiles each once
# and skips rebuilding and re-keying a statement on every request.
_TILL = Till.__table__
_SPENT = SpentCode.__table__
_FIND_TILL = select(_TILL.c.merchant_id, _TILL.c.secret_hash, _TILL.c.status).where(_TILL.c.id == bindparam("till_id"))
_FIND_MERCHANT_AND_WALLET = (
    select(_MERCHANTS.c.id, _MERCHANTS.c.code, _MERCHANTS.c.name, _MERCHANTS.c.status, _MERCHANTS.c.account_id,
           _MERCHANTS.c.daily_limit_beans, _ACCOUNTS.c.kind.label("wallet_kind"),
           _ACCOUNTS.c.status.label("wallet_status"))
    .select_from(_MERCHANTS.outerjoin(_ACCOUNTS, _ACCOUNTS.c.id == bindparam("wallet_id")))
    .where(_MERCHANTS.c.id == bindparam("merchant_id")))
_INSERT_REDEMPTION = _REDEMPTIONS.insert().returning(_REDEMPTIONS.c.id)
_FIND_ANSWER = select(_IDEMPOTENCY.c.request_hash, _IDEMPOTENCY.c.status_code, _IDEMPOTENCY.c.body).where(
    _IDEMPOTENCY.c.scope == bindparam("scope"), _IDEMPOTENCY.c.key == bindparam("key"))
_STORE_ANSWER = update(_IDEMPOTENCY).where(_IDEMPOTENCY.c.id == bindparam("record_id")).values(
    status_code=bindparam("status_code"), body=bindparam("body"))
_FORGET_KEY = delete(_IDEMPOTENCY).where(_IDEMPOTENCY.c.id == bindparam("record_id"))


def _redeemed_today_stmt(column: str) -> Any:
    r = _REDEMPTIONS.c
    return select(func.coalesce(func.sum(r.amount), 0)).where(
        r[column] == bindparam("owner"), r.requested_at >= bindparam("start"), r.requested_at < bindparam("end"),
        or_(r.status == "completed", (r.status == "awaiting_confirmation") & (r.hold_expires_at > bindparam("now"))))


_REDEEMED_TODAY = {column: _redeemed_today_stmt(column) for column in ("wallet_account_id", "merchant_id")}


@functools.cache
def _insert_if_new(dialect: str, table_name: str) -> Any:
    """``INSERT ... ON CONFLICT DO NOTHING RETURNING id`` for the spent codes and the idempotency keys."""
    table, conflict = {"spent_codes": (_SPENT, ["jti"]), "idempotency_records": (_IDEMPOTENCY, ["scope", "key"])}[
        table_name]
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing(index_elements=conflict).returning(table.c.id)


def canonical_json(body: Any) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# --- who is at the till --------------------------------------------------------------------------------

@dataclass(frozen=True)
class TillContext:
    """The merchant a till request acts for, and who sent it: ``user:7`` (a cashier) or ``till:3``."""

    merchant_id: int
    actor: str
    till_id: int | None = None


@dataclass(frozen=True)
class Answer:
    """A stored answer: HTTP status and the exact JSON text, replayed byte for byte on a retry."""

    status: int
    body: str
    replayed: bool = False

    def json(self) -> Any:
        return json.loads(self.body)


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_till(books: Books, merchant_id: int, name: str, actor: str) -> tuple[dict[str, Any], str]:
    """A till key for the merchant: ``gbtill_<id>_<secret>``, shown once; only its hash is kept."""
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= 80:
        raise DomainError(errors.VALIDATION_FAILED, "a till needs a name of 1 to 80 characters")
    secret = secrets.token_urlsafe(32)

    def work(s: Session) -> tuple[dict[str, Any], str]:
        _merchant(s, merchant_id)
        till = Till(merchant_id=merchant_id, name=name.strip(), secret_hash=_hash_secret(secret), status="active",
                    created_by=actor, created_at=books.now())
        s.add(till)
        s.flush()
        return _till_view(till), f"{TILL_KEY_PREFIX}{till.id}_{secret}"

    return books.run(work)


def revoke_till(books: Books, merchant_id: int, till_id: int) -> dict[str, Any]:
    def work(s: Session) -> dict[str, Any]:
        till = s.get(Till, till_id, with_for_update=True)
        if till is None or till.merchant_id != merchant_id:
            raise DomainError(errors.NOT_FOUND_ERR, till_id=till_id)
        if till.status != "revoked":
            till.status = "revoked"
            till.revoked_at = books.now()
        return _till_view(till)

    return books.run(work)


def list_tills(books: Books, merchant_id: int) -> list[dict[str, Any]]:
    def work(s: Session) -> list[dict[str, Any]]:
        return [_till_view(t) for t in s.scalars(select(Till).where(Till.merchant_id == merchant_id).order_by(Till.id))]

    return books.run(work, readonly=True)


def _till_view(till: Till) -> dict[str, Any]:
    return {"id": till.id, "merchant_id": till.merchant_id, "name": till.name, "status": till.status,
            "created_at": _iso(till.created_at), "revoked_at": _iso(till.revoked_at)}


def is_till_key(value: str) -> bool:
    return value.startswith(TILL_KEY_PREFIX)


def authenticate_till(books: Books, key: str) -> TillContext:
    """The till a key belongs to, if the key is right and neither it nor its merchant is revoked."""
    match = re.fullmatch(rf"{TILL_KEY_PREFIX}([0-9]{{1,18}})_([A-Za-z0-9_-]{{20,100}})", key or "")
    if match is None:
        raise DomainError(errors.INVALID_TILL_KEY)
    till_id, secret = int(match.group(1)), match.group(2)

    def work(conn: Any) -> TillContext:
        till = conn.execute(_FIND_TILL, {"till_id": till_id}).one_or_none()
        expected = till.secret_hash if till is not None else _hash_secret("no such till")
        ok = hmac.compare_digest(expected, _hash_secret(secret))
        if till is None or not ok or till.status != "active":
            raise DomainError(errors.INVALID_TILL_KEY)
        return TillContext(till.merchant_id, f"till:{till_id}", till_id)

    return books.run_core(work, readonly=True)


# --- catalogue ---------------------------------------------------------------------------------------

def _item_view(item: CatalogueItem) -> dict[str, Any]:
    return {"id": item.id, "merchant_id": item.merchant_id, "name": item.name, "price": item.price,
            "active": item.active}


def _check_item_fields(name: Any, price: Any) -> None:
    if name is not None and (not isinstance(name, str) or not 1 <= len(name.strip()) <= 120):
        raise DomainError(errors.VALIDATION_FAILED, "an item's name is 1 to 120 characters")
    if price is not None and (type(price) is not int or not 1 <= price <= 10**9):
        raise DomainError(errors.INVALID_AMOUNT, "a price is a whole number of beans from 1")


def add_item(books: Books, merchant_id: int, name: str, price: int) -> dict[str, Any]:
    _check_item_fields(name, price)

    def work(s: Session) -> dict[str, Any]:
        _merchant(s, merchant_id)
        item = CatalogueItem(merchant_id=merchant_id, name=name.strip(), price=price, active=True,
                             created_at=books.now())
        s.add(item)
        s.flush()
        return _item_view(item)

    return books.run(work)


def update_item(books: Books, merchant_id: int, item_id: int, *, name: str | None = None,
                price: int | None = None, active: bool | None = None) -> dict[str, Any]:
    _check_item_fields(name, price)

    def work(s: Session) -> dict[str, Any]:
        item = s.get(CatalogueItem, item_id, with_for_update=True)
        if item is None or item.merchant_id != merchant_id:
            raise DomainError(errors.NOT_FOUND_ERR, item_id=item_id)
        if name is not None:
            item.name = name.strip()
        if price is not None:
            item.price = price
        if active is not None:
            item.active = bool(active)
        return _item_view(item)

    return books.run(work)


def list_items(books: Books, merchant_id: int, *, include_inactive: bool = False) -> list[dict[str, Any]]:
    def work(s: Session) -> list[dict[str, Any]]:
        q = select(CatalogueItem).where(CatalogueItem.merchant_id == merchant_id)
        if not include_inactive:
            q = q.where(CatalogueItem.active.is_(True))
        return [_item_view(i) for i in s.scalars(q.order_by(CatalogueItem.id))]

    return books.run(work, readonly=True)


# --- bean cards ------------------------------------------------------------------------------------

def _card_view(card: Card) -> dict[str, Any]:
    return {"id": card.id, "user_id": card.user_id, "wallet_account_id": card.wallet_account_id,
            "status": card.status, "failed_pins": card.failed_pins, "created_at": _iso(card.created_at),
            "revoked_at": _iso(card.revoked_at)}


def authorize_card_admin(s: Session, actor: Any, user_id: int) -> None:
    """Admins manage every card; an officer the cards of volunteers whose home unit they serve."""
    from ledger.access.identity import in_scope
    from ledger.access.models import RoleGrant

    if actor is None or actor.has_role("admin"):
        return
    if actor.has_role("officer"):
        homes = s.scalars(select(RoleGrant.org_unit_id).where(
            RoleGrant.user_id == user_id, RoleGrant.org_unit_id.is_not(None))).all()
        if any(in_scope(s, actor, "officer", unit) for unit in homes):
            return
        raise DomainError(errors.OUT_OF_SCOPE)
    raise DomainError(errors.PERMISSION_DENIED)


def _check_pin(pin: Any) -> None:
    if not isinstance(pin, str) or not PIN_RE.match(pin):
        raise DomainError(errors.VALIDATION_FAILED, "a PIN is 4 to 8 digits")


def issue_card(books: Books, user_id: int, actor: str, pin: str | None = None, *, by: Any = None
               ) -> dict[str, Any]:
    """A new card for the user; any earlier card of theirs is revoked in the same transaction.

    Returns the card, its code and, when no PIN was given, the generated 6-digit PIN (shown once)."""
    generated = pin is None
    if pin is None:
        pin = f"{secrets.randbelow(10**6):06d}"
    _check_pin(pin)
    pin_hash = _PIN_HASHER.hash(pin)
    token_id = secrets.token_urlsafe(16)

    def work(s: Session) -> dict[str, Any]:
        from ledger.access.identity import wallet_account_id

        if s.get(User, user_id) is None:
            raise DomainError(errors.NOT_FOUND_ERR, user_id=user_id)
        authorize_card_admin(s, by, user_id)
        wallet = wallet_account_id(s, user_id)
        now = books.now()
        for old in s.scalars(select(Card).where(Card.user_id == user_id, Card.status != "revoked")
                             .with_for_update()):
            old.status = "revoked"
            old.revoked_at = now
        card = Card(user_id=user_id, wallet_account_id=wallet, token_id=token_id, code="", pin_hash=pin_hash,
                    failed_pins=0, status="active", issued_by=actor, created_at=now)
        s.add(card)
        s.flush()
        card.code = codes.issue_card_code(books, card.id, wallet, token_id)
        out = {"card": _card_view(card), "code": card.code}
        if generated:
            out["pin"] = pin
        return out

    return books.run(work)


def _set_card_status(books: Books, card_id: int, status: str, by: Any) -> dict[str, Any]:
    def work(s: Session) -> dict[str, Any]:
        card = s.get(Card, card_id, with_for_update=True)
        if card is None:
            raise DomainError(errors.NOT_FOUND_ERR, card_id=card_id)
        authorize_card_admin(s, by, card.user_id)
        if card.status == "revoked":
            raise DomainError(errors.CARD_REVOKED)
        card.status = status
        card.failed_pins = 0
        if status == "revoked":
            card.revoked_at = books.now()
        return _card_view(card)

    return books.run(work)


def revoke_card(books: Books, card_id: int, *, by: Any = None) -> dict[str, Any]:
    """The card's code stops working at once (the status is checked in every redemption)."""
    return _set_card_status(books, card_id, "revoked", by)


def unlock_card(books: Books, card_id: int, *, by: Any = None) -> dict[str, Any]:
    return _set_card_status(books, card_id, "active", by)


def get_card(books: Books, card_id: int, *, with_code: bool = False, by: Any = None) -> dict[str, Any]:
    def work(s: Session) -> dict[str, Any]:
        card = s.get(Card, card_id)
        if card is None:
            raise DomainError(errors.NOT_FOUND_ERR, card_id=card_id)
        authorize_card_admin(s, by, card.user_id)
        view = _card_view(card)
        if with_code:
            user = s.get(User, card.user_id)
            view["code"] = card.code
            view["holder"] = user.display_name if user else ""
        return view

    return books.run(work, readonly=True)


def _verify_pin(pin_hash: str, pin: str) -> bool:
    try:
        return _PIN_HASHER.verify(pin_hash, pin)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# --- idempotency -------------------------------------------------------------------------------------

def request_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def _check_key(key: Any) -> str:
    if not isinstance(key, str) or not 1 <= len(key) <= 100 or not key.isprintable():
        raise DomainError(errors.IDEMPOTENCY_KEY_REQUIRED)
    return key


def _claim_key(s: Session, scope: str, key: str, req_hash: str, now: dt.datetime) -> int | Answer:
    """Take ``key`` in ``scope`` for this request (returns the record's id), or return the answer stored
    under it.

    The INSERT waits on PostgreSQL while another transaction holds the same key uncommitted, then
    either finds it committed (a retry: its answer) or takes it (the other rolled back)."""
    conn = s.connection()
    new_id = conn.execute(_insert_if_new(conn.dialect.name, "idempotency_records"), {
        "scope": scope, "key": key, "request_hash": req_hash, "status_code": 0, "body": "",
        "created_at": now}).scalar()  # the books' clock, which the retention (ledger.housekeeping) reads
    if new_id is None:
        row = conn.execute(_FIND_ANSWER, {"scope": scope, "key": key}).one()
        if row.request_hash != req_hash:
            raise DomainError(errors.IDEMPOTENCY_CONFLICT)
        return Answer(row.status_code, row.body, replayed=True)
    return int(new_id)


def _idempotent(books: Books, scope: str, key: str, payload: dict[str, Any],
                work: Callable[[Session], tuple[int, dict[str, Any]] | DomainError]) -> Answer:
    """Run ``work`` once per (scope, key); store and return its answer. ``work`` may *return* a
    ``DomainError`` to commit what it wrote (a failed PIN count) and refuse without storing an answer."""
    _check_key(key)
    req_hash = request_hash(payload)

    def unit(s: Session) -> Answer | DomainError:
        claimed = _claim_key(s, scope, key, req_hash, books.now())
        if isinstance(claimed, Answer):
            return claimed
        result = work(s)
        s.flush()  # the use case's own ORM rows first (the record's row is written below, in Core)
        if isinstance(result, DomainError):
            s.connection().execute(_FORGET_KEY, {"record_id": claimed})
            return result
        status, body = result
        text = canonical_json(body)
        s.connection().execute(_STORE_ANSWER, {"record_id": claimed, "status_code": status, "body": text})
        return Answer(status, text)

    answer = books.run(unit)
    if isinstance(answer, DomainError):
        raise answer
    return answer


# --- redeeming ---------------------------------------------------------------------------------------

def _merchant(s: Session, merchant_id: int, *, lock: bool = False) -> Merchant:
    merchant = s.get(Merchant, merchant_id, with_for_update=lock)
    if merchant is None:
        raise DomainError(errors.NOT_FOUND_ERR, merchant_id=merchant_id)
    return merchant


def _day_bounds(books: Books, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    local = now.astimezone(local_tz(books))
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return start.astimezone(dt.timezone.utc), (start + dt.timedelta(days=1)).astimezone(dt.timezone.utc)


def _redeemed_today(conn: Any, books: Books, now: dt.datetime, column: str, owner: int) -> int:
    """Beans redeemed today (local day) by one wallet (``column="wallet_account_id"``) or at one merchant
    (``"merchant_id"``), holds still open included."""
    start, end = _day_bounds(books, now)
    return int(conn.execute(_REDEEMED_TODAY[column], {"owner": owner, "start": start, "end": end, "now": now})
               .scalar() or 0)


def _priced_items(s: Session, merchant_id: int, items: list[dict[str, Any]]) -> tuple[int, list[dict[str, Any]]]:
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
        raise DomainError(errors.VALIDATION_FAILED, f"items: 1 to {MAX_ITEMS} lines")
    wanted: dict[int, int] = {}
    for line in items:
        item_id, qty = line.get("item_id"), line.get("qty", 1)
        if type(item_id) is not int or type(qty) is not int or not 1 <= qty <= MAX_QTY:
            raise DomainError(errors.VALIDATION_FAILED, f"each line is an item_id and a qty from 1 to {MAX_QTY}")
        wanted[item_id] = wanted.get(item_id, 0) + qty
    found = {i.id: i for i in s.scalars(select(CatalogueItem).where(
        CatalogueItem.id.in_(wanted), CatalogueItem.merchant_id == merchant_id, CatalogueItem.active.is_(True)))}
    lines = []
    for item_id, qty in sorted(wanted.items()):
        item = found.get(item_id)
        if item is None:
            raise DomainError(errors.UNKNOWN_ITEM, item_id=item_id)
        lines.append({"item_id": item.id, "name": item.name, "price": item.price, "qty": qty})
    return sum(line["price"] * line["qty"] for line in lines), lines


def redeem(books: Books, ctx: TillContext, *, code: str, idempotency_key: str, amount: int | None = None,
           items: list[dict[str, Any]] | None = None, pin: str | None = None, source: str | None = None) -> Answer:
    """Spend beans from the wallet a code names at the till's merchant (see docs/redemption.md).

    201 with a receipt; above the hold threshold the receipt says ``awaiting_confirmation`` and the beans
    are only held until the volunteer confirms in the wallet (or the hold times out)."""
    if (amount is None) == (items is None):
        raise DomainError(errors.VALIDATION_FAILED, "send either amount or items")
    if amount is not None and (type(amount) is not int or amount < 1):
        raise DomainError(errors.INVALID_AMOUNT)
    # the PIN is not part of the request's fingerprint: a retry with another PIN gets the stored receipt
    payload = {"op": "redeem", "merchant": ctx.merchant_id, "code": code, "amount": amount, "items": items}

    def work(s: Session) -> tuple[int, dict[str, Any]] | DomainError:
        now = books.now()
        verified = codes.verify_code(books, code)
        conn = s.connection()  # Core from here on: this is the till's hot path
        card: Card | None = None
        if verified.typ == codes.CARD_TYP:
            card = s.get(Card, verified.card_id, with_for_update=True)
            if card is None or card.token_id != verified.jti or card.wallet_account_id != verified.wallet_account_id:
                raise DomainError(errors.INVALID_CODE)
            if card.status == "revoked":
                raise DomainError(errors.CARD_REVOKED)
            if pin is None:
                raise DomainError(errors.CARD_LOCKED if card.status == "locked" else errors.PIN_REQUIRED)
            refusal = _check_card_pin(s, books, now, ctx, card, pin, source)
            if refusal is not None:
                return refusal  # committed: the try is counted and logged
        else:
            spent = conn.execute(_insert_if_new(conn.dialect.name, "spent_codes"), {
                "jti": verified.jti, "wallet_account_id": verified.wallet_account_id, "created_at": now}).scalar()
            if spent is None:
                raise DomainError(errors.CODE_ALREADY_USED)

        # the merchant and the wallet the code names, in one statement
        found = conn.execute(_FIND_MERCHANT_AND_WALLET, {
            "merchant_id": ctx.merchant_id, "wallet_id": verified.wallet_account_id}).one_or_none()
        if found is None:
            raise DomainError(errors.NOT_FOUND_ERR, merchant_id=ctx.merchant_id)
        if found.status != "active":
            raise DomainError(errors.MERCHANT_SUSPENDED)
        if found.wallet_kind != "wallet":
            raise DomainError(errors.INVALID_CODE)
        if found.wallet_status != "open":
            raise DomainError(errors.WALLET_FROZEN)
        wallet_id = verified.wallet_account_id
        if items is not None:
            total, lines = _priced_items(s, found.id, items)
        else:
            total, lines = amount, []
        assert total is not None

        held = total > int(setting(books, "redemption_hold_threshold"))
        timeout = int(setting(books, "redemption_hold_timeout_s"))
        transfer_key = f"redeem:{secrets.token_hex(12)}"
        method = "card" if card is not None else "wallet_code"
        status = "awaiting_confirmation" if held else "completed"
        hold_expires_at = now + dt.timedelta(seconds=timeout) if held else None
        redemption_id = conn.execute(_INSERT_REDEMPTION, {
            "merchant_id": found.id, "wallet_account_id": wallet_id, "amount": total, "refunded": 0,
            "items": canonical_json(lines), "method": method, "card_id": card.id if card is not None else None,
            "code_jti": verified.jti, "status": status, "transfer_key": transfer_key, "actor": ctx.actor,
            "till_id": ctx.till_id, "requested_at": now, "completed_at": None if held else now,
            "hold_expires_at": hold_expires_at, "created_at": now,
        }).scalar_one()
        reason = f"兑换 redemption at {found.code}"
        reference = f"redemption:{redemption_id}"
        if held:
            req = hold(transfer_key, "redeem", wallet_id, found.account_id, total, timeout, actor=ctx.actor,
                       reason=reason, reference=reference)
        else:
            req = transfer(transfer_key, "redeem", wallet_id, found.account_id, total, actor=ctx.actor,
                           reason=reason, reference=reference)
        # posting locks both accounts (id order) and refuses what the wallet cannot pay; today's totals are
        # read after it, under those locks, so that the limits hold under concurrency (this redemption's
        # own row is already counted)
        post_in(s, books, [req])
        limit = setting(books, "volunteer_daily_limit")
        if limit is not None and _redeemed_today(conn, books, now, "wallet_account_id", wallet_id) > int(limit):
            raise DomainError(errors.LIMIT_EXCEEDED, "The volunteer's daily limit would be exceeded.",
                              limit="volunteer")
        m_limit = found.daily_limit_beans or setting(books, "merchant_daily_limit")
        if m_limit is not None and _redeemed_today(conn, books, now, "merchant_id", found.id) > int(m_limit):
            raise DomainError(errors.LIMIT_EXCEEDED, "The merchant's daily limit would be exceeded.",
                              limit="merchant")
        return 201, _receipt_body(redemption_id, status, total, lines, found, now, method, hold_expires_at)

    return _idempotent(books, f"merchant:{ctx.merchant_id}", idempotency_key, payload, work)


def _receipt(red: Redemption, merchant: Merchant) -> dict[str, Any]:
    return _receipt_body(red.id, red.status, red.amount, json.loads(red.items), merchant, red.requested_at,
                         red.method, red.hold_expires_at)


def _receipt_body(redemption_id: int, status: str, amount: int, items: list[dict[str, Any]], merchant: Any,
                  requested_at: dt.datetime, method: str, hold_expires_at: dt.datetime | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "redemption_id": redemption_id,
        "status": status,
        "amount": amount,
        "items": items,
        "merchant": {"id": merchant.id, "code": merchant.code, "name": merchant.name},
        "time": _iso(requested_at),
        "method": method,
    }
    if status == "awaiting_confirmation":
        body["confirm_by"] = _iso(hold_expires_at)
    return body


def _status_now(s: Session, red: Redemption, now: dt.datetime) -> str:
    """A hold that timed out is ``expired`` even before the expiry worker released it."""
    if red.status == "awaiting_confirmation":
        expires = utc_from_db(red.hold_expires_at)
        if expires is not None and expires <= now:
            return "expired"
    return red.status


def redemption_view(s: Session, red: Redemption, now: dt.datetime) -> dict[str, Any]:
    merchant = s.get(Merchant, red.merchant_id)
    assert merchant is not None
    view = _receipt(red, merchant)
    view.update(status=_status_now(s, red, now), refunded=red.refunded, wallet_account_id=red.wallet_account_id,
                completed_at=_iso(red.completed_at), actor=red.actor)
    view["refunds"] = [
        {"refund_id": r.id, "amount": r.amount, "time": _iso(r.refunded_at), "reason": r.reason}
        for r in s.scalars(select(Refund).where(Refund.redemption_id == red.id).order_by(Refund.id))
    ]
    return view


def get_redemption(books: Books, merchant_ids: set[int] | None, redemption_id: int) -> dict[str, Any]:
    """A redemption, if it belongs to one of ``merchant_ids`` (``None``: any, for auditors)."""

    def work(s: Session) -> dict[str, Any]:
        red = s.get(Redemption, redemption_id)
        if red is None or (merchant_ids is not None and red.merchant_id not in merchant_ids):
            raise DomainError(errors.NOT_FOUND_ERR, redemption_id=redemption_id)
        return redemption_view(s, red, books.now())

    return books.run(work, readonly=True)


def merchant_of_redemption(books: Books, redemption_id: int) -> int | None:
    """The merchant a redemption was made at, or None when there is no such redemption."""
    return books.run(lambda s: s.scalar(select(Redemption.merchant_id).where(Redemption.id == redemption_id)),
                     readonly=True)


def list_redemptions(books: Books, merchant_id: int, *, limit: int = 50, before_id: int | None = None
                     ) -> list[dict[str, Any]]:
    limit = max(1, min(int(limit), 200))

    def work(s: Session) -> list[dict[str, Any]]:
        q = select(Redemption).where(Redemption.merchant_id == merchant_id)
        if before_id is not None:
            q = q.where(Redemption.id < before_id)
        now = books.now()
        return [redemption_view(s, r, now) for r in s.scalars(q.order_by(Redemption.id.desc()).limit(limit))]

    return books.run(work, readonly=True)


# --- the volunteer confirms or declines a held redemption ---------------------------------------------

def _resolve_hold(books: Books, wallet_account_id: int, redemption_id: int, confirm: bool, actor: str
                  ) -> dict[str, Any]:
    def work(s: Session) -> dict[str, Any]:
        now = books.now()
        red = s.get(Redemption, redemption_id, with_for_update=True)
        if red is None or red.wallet_account_id != wallet_account_id:
            raise DomainError(errors.NOT_FOUND_ERR, redemption_id=redemption_id)
        if _status_now(s, red, now) != "awaiting_confirmation":
            raise DomainError(errors.HOLD_NOT_AWAITING, status=_status_now(s, red, now))
        if confirm:
            post_in(s, books, [post_hold(f"{red.transfer_key}:post", red.transfer_key, actor=actor,
                                         reason="volunteer confirmed", reference=f"redemption:{red.id}")])
            red.status, red.completed_at = "completed", now
        else:
            post_in(s, books, [void_hold(f"{red.transfer_key}:void", red.transfer_key, actor=actor,
                                         reason="volunteer declined", reference=f"redemption:{red.id}")])
            red.status = "declined"
        return redemption_view(s, red, now)

    return books.run(work)


def confirm_hold(books: Books, wallet_account_id: int, redemption_id: int, actor: str) -> dict[str, Any]:
    return _resolve_hold(books, wallet_account_id, redemption_id, True, actor)


def decline_hold(books: Books, wallet_account_id: int, redemption_id: int, actor: str) -> dict[str, Any]:
    return _resolve_hold(books, wallet_account_id, redemption_id, False, actor)


# --- refunds -----------------------------------------------------------------------------------------

def refund(books: Books, ctx: TillContext, redemption_id: int, *, idempotency_key: str, amount: int | None = None,
           reason: str = "") -> Answer:
    """Give back all (``amount=None``) or part of what remains of a redemption at the same merchant."""
    if amount is not None and (type(amount) is not int or amount < 1):
        raise DomainError(errors.INVALID_AMOUNT)
    if not isinstance(reason, str) or len(reason) > 500:
        raise DomainError(errors.VALIDATION_FAILED, "a reason is at most 500 characters")
    payload = {"op": "refund", "redemption": redemption_id, "amount": amount, "reason": reason}

    def work(s: Session) -> tuple[int, dict[str, Any]]:
        now = books.now()
        red = s.get(Redemption, redemption_id, with_for_update=True)
        if red is None or red.merchant_id != ctx.merchant_id:
            raise DomainError(errors.NOT_FOUND_ERR, redemption_id=redemption_id)
        if red.status != "completed":
            raise DomainError(errors.NOT_REFUNDABLE, status=_status_now(s, red, now))
        window = dt.timedelta(days=int(setting(books, "refund_window_days")))
        if utc_from_db(red.completed_at) + window < now:
            raise DomainError(errors.REFUND_WINDOW_CLOSED)
        remaining = red.amount - red.refunded
        wanted = remaining if amount is None else amount
        if remaining == 0 or wanted > remaining:
            raise DomainError(errors.EXCEEDS_REFUNDABLE, remaining=remaining)
        merchant = _merchant(s, red.merchant_id)
        n = s.scalar(select(func.count()).select_from(Refund).where(Refund.redemption_id == red.id)) + 1
        key = f"{red.transfer_key}:refund:{n}"
        post_in(s, books, [transfer(key, "refund", merchant.account_id, red.wallet_account_id, wanted,
                                    actor=ctx.actor, reason=reason or "退还 refund",
                                    reference=f"redemption:{red.id}")])
        ref = Refund(redemption_id=red.id, merchant_id=red.merchant_id, amount=wanted, reason=reason,
                     transfer_key=key, actor=ctx.actor, refunded_at=now, created_at=now)
        s.add(ref)
        red.refunded += wanted
        s.flush()
        return 201, {"refund_id": ref.id, "redemption_id": red.id, "amount": wanted, "refunded_total": red.refunded,
                     "remaining": red.amount - red.refunded, "time": _iso(now)}

    return _idempotent(books, f"merchant:{ctx.merchant_id}", idempotency_key, payload, work)


# --- the wallet's own view -----------------------------------------------------------------------------

def wallet_overview(books: Books, wallet_account_id: int, *, history: int = 20) -> dict[str, Any]:
    def work(s: Session) -> dict[str, Any]:
        now = books.now()
        acc = s.get(Account, wallet_account_id)
        if acc is None:
            raise DomainError(errors.ACCOUNT_NOT_FOUND)
        rows = s.scalars(select(Transfer).where(or_(Transfer.debit_account_id == acc.id,
                                                    Transfer.credit_account_id == acc.id))
                         .order_by(Transfer.id.desc()).limit(history)).all()
        awaiting = s.scalars(select(Redemption).where(Redemption.wallet_account_id == acc.id,
                                                      Redemption.status == "awaiting_confirmation",
                                                      Redemption.hold_expires_at > now)
                             .order_by(Redemption.id)).all()
        return {
            "wallet_account_id": acc.id,
            "status": acc.status,
            "balance": acc.credits_posted - acc.debits_posted,
            "available": acc.credits_posted - acc.debits_posted - acc.debits_pending,
            "on_hold": acc.debits_pending,
            "awaiting_confirmation": [redemption_view(s, r, now) for r in awaiting],
            "history": [{
                "transfer_id": t.id, "kind": t.kind, "phase": t.phase,
                "amount": t.amount if t.credit_account_id == acc.id else -t.amount,
                "reason": t.reason, "reference": t.reference, "time": _iso(t.created_at),
            } for t in rows],
        }

    return books.run(work, readonly=True)


def redeem_at_till(books: Books, ctx: Any, source: str | None, *, pin: str | None, **kwargs: Any) -> Any:
    """``redeem`` for a till at ``source`` (the address is logged with every PIN typed)."""
    return redeem(books, ctx, pin=pin, source=source, **kwargs)


def _check_card_pin(s: Session, books: Books, now: dt.datetime, ctx: TillContext, card: Card, pin: Any,
                    source: str | None) -> DomainError | None:
    """The PIN typed for ``card`` at the till ``ctx``: throttled per card (five wrong lock it) and per till
    (``ledger.access.security``: wrong PINs for several holders pause the till), judged and counted in this
    transaction under the till's lock; every try logged."""
    refusal = security.guard_pin_in(s, books, now, ctx.actor, source)
    if refusal is not None:
        return refusal

    def note(ok: bool, **detail: Any) -> None:
        security.note_pin_in(s, now, ok, till=ctx.actor, source=source, holder=card.user_id, card_id=card.id,
                             merchant_id=ctx.merchant_id, **detail)

    if card.status == "locked":
        note(False, error=errors.CARD_LOCKED.code)
        return DomainError(errors.CARD_LOCKED)
    if not isinstance(pin, str) or not _verify_pin(card.pin_hash, pin):
        card.failed_pins += 1
        note(False, error=errors.WRONG_PIN.code)
        tries_left = max(0, int(setting(books, "max_pin_tries")) - card.failed_pins)
        if tries_left == 0:
            card.status = "locked"
            return DomainError(errors.WRONG_PIN, "Wrong PIN; the card is now locked.", tries_left=0)
        return DomainError(errors.WRONG_PIN, tries_left=tries_left)
    card.failed_pins = 0
    note(True)
    return None


def _till_of_merchant(s: Session, merchant_id: int, till: str) -> bool:
    """Whether ``till`` (``till:<id>`` or the cashier ``user:<id>``) is one of this merchant's tills."""
    kind, _, ident = till.partition(":")
    if not ident.isdigit():
        return False
    if kind == "till":
        found = s.get(Till, int(ident))
        return found is not None and found.merchant_id == merchant_id
    if kind == "user":
        return s.scalar(select(RoleGrant.id).where(
            RoleGrant.user_id == int(ident), RoleGrant.merchant_id == merchant_id,
            RoleGrant.role.in_(("cashier", "merchant_owner"))).limit(1)) is not None
    return False


def lift_till_pin_throttle(books: Books, actor: Any, merchant_id: int, till: str, *,
                           source: str | None = None) -> dict[str, Any]:
    """The merchant's owner (or an admin) lets a paused till take PINs again; logged as
    ``pin_throttle_lifted`` with who, from where and which till. Cards stay locked until an officer unlocks
    them."""
    if not (actor.has_role("admin") or merchant_id in actor.merchant_ids_for("merchant_owner")):
        raise DomainError(errors.PERMISSION_DENIED, "Only this merchant's owner may do this.")
    now = books.now()

    def work(s: Session) -> dict[str, Any]:
        _merchant(s, merchant_id)
        if not isinstance(till, str) or not _till_of_merchant(s, merchant_id, till):
            raise DomainError(errors.NOT_FOUND_ERR, "no such till at this merchant", till=str(till)[:40])
        security.lock_bucket_in(s, f"pin:till:{till}")
        was_paused = security.failing_cards_at(s, now, till) >= security.limit(books, "failed_pin_cards_per_till")
        # the detail is exactly {"till": ...}: that is how the till's last lift is found (till_lift_marker)
        security.record_in(s, "pin_throttle_lifted", at=now, source=source, actor=actor.ref, till=till)
        return {"merchant_id": merchant_id, "till": till, "was_paused": was_paused, "lifted_at": _iso(now)}

    return books.run(work)


def paused_tills(books: Books, actor: Any, merchant_id: int) -> list[str]:
    """The merchant's tills that refuse PINs now (``till:<id>``, ``user:<id>``); its cashiers, owner and
    admins may ask (the till page shows them, with a button for the owner)."""
    if merchant_id not in actor.merchant_ids_for("cashier", "merchant_owner") and not actor.has_role("admin"):
        raise DomainError(errors.PERMISSION_DENIED)
    now = books.now()
    cap = security.limit(books, "failed_pin_cards_per_till")

    def work(s: Session) -> list[str]:
        recent = s.scalars(select(SecurityEvent.actor).distinct().where(
            SecurityEvent.kind == "pin_failed", SecurityEvent.at >= now - security.THROTTLE_WINDOW,
            SecurityEvent.actor.is_not(None))).all()
        return sorted(till for till in recent if _till_of_merchant(s, merchant_id, till)
                      and security.failing_cards_at(s, now, till) >= cap)

    return books.run(work, readonly=True)


def issue_payment_code(books: Books, actor: Any, *, source: str | None = None) -> codes.WalletCode:
    """A fresh payment code for the actor's own wallet, behind the per-user rate limit (``code_per_user``
    a minute, ``rate_limited``): the one way both doors (the API and the wallet page) mint codes."""
    if not (actor.has_role("volunteer") or actor.has_role("leader")):
        raise DomainError(errors.PERMISSION_DENIED, required_roles=["volunteer", "leader"])
    from ledger.access.identity import wallet_of

    wallet = wallet_of(books, actor.user_id)
    security.take(books, "payment_code", f"code:user:{actor.user_id}", "code_per_user", source=source,
                  user_id=actor.user_id)
    return codes.issue_wallet_code(books, wallet)
