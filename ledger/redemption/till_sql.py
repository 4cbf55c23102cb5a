"""The till's hot path in hand-written SQL, one dialect at a time (like ``ledger.journal.dialects``).

Every statement runs on the driver's cursor (``ledger.infra.db.driver_rows``): no statement building,
compiling or result wrapping per request. On PostgreSQL a wallet code is spent, the merchant and the
wallet are read and (for an amount) the redemption row is written in ONE statement: a data-modifying
CTE, one round trip where SQLite runs three cheap in-process statements. No rule lives here: which
refusal a row means is ``ledger.redemption.redeeming``'s to say, in the same order on both databases.

Order of locks (``ledger.redemption.core``): the spent code, then the redemption row (and the merchant's
and wallet's rows in ``FOR KEY SHARE``, by their foreign keys), then posting locks the accounts.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

from sqlalchemy import Connection

from ledger.infra.db import Alongside, bind_time, driver_rows


class Found(NamedTuple):
    """The merchant's row joined with the wallet's kind and status (``None`` for no such account)."""

    id: int
    code: str
    name: str
    status: str
    account_id: int
    daily_limit_beans: int | None
    wallet_kind: str | None
    wallet_status: str | None
    wallet_owner: str | None  # ``user:<id>`` for a volunteer's wallet (whose open app hears of a payment)


class Spent(NamedTuple):
    found: Found | None  # None: no such merchant (nothing was written)
    spent: bool  # the code's jti was free and is now spent (only ever for a wallet account)
    redemption_id: int | None  # written with it (an amount sale whose code was spent), else None


REDEMPTION_COLUMNS = ("merchant_id", "wallet_account_id", "amount", "refunded", "items", "method", "card_id",
                      "device_id", "code_jti", "status", "transfer_key", "actor", "till_id", "requested_at", "completed_at",
                      "hold_expires_at", "created_at")
_PG_TYPES = {"merchant_id": "bigint", "wallet_account_id": "bigint", "amount": "bigint", "refunded": "bigint",
             "card_id": "bigint", "device_id": "bigint", "till_id": "bigint", "requested_at": "timestamptz",
             "completed_at": "timestamptz", "hold_expires_at": "timestamptz", "created_at": "timestamptz"}
_PG_VALUES = ", ".join(f"%(r_{c})s::{_PG_TYPES.get(c, 'text')}" for c in REDEMPTION_COLUMNS)
_SQLITE_VALUES = ", ".join(f":r_{c}" for c in REDEMPTION_COLUMNS)
_INSERT = f"INSERT INTO redemptions ({', '.join(REDEMPTION_COLUMNS)})"

_MERCHANT = "m.id, m.code, m.name, m.status, m.account_id, m.daily_limit_beans"
_PG_FIND = (f"SELECT {_MERCHANT}, w.kind, w.status, w.owner_ref FROM merchants m LEFT JOIN accounts w ON w.id = %(wallet_id)s "
            "WHERE m.id = %(merchant_id)s")
_SQLITE_FIND = (f"SELECT {_MERCHANT}, w.kind, w.status, w.owner_ref FROM merchants m LEFT JOIN accounts w ON w.id = :wallet_id "
                "WHERE m.id = :merchant_id")
_PG_SPEND_WITH = (
    f"WITH m AS (SELECT {_MERCHANT.replace('m.', '')} FROM merchants WHERE id = %(merchant_id)s), "
    "w AS (SELECT kind, status, owner_ref FROM accounts WHERE id = %(wallet_id)s), "
    "s AS (INSERT INTO spent_codes (jti, wallet_account_id, created_at) "
    "SELECT %(jti)s::text, %(wallet_id)s::bigint, %(now)s::timestamptz FROM m, w WHERE w.kind = 'wallet' "
    "ON CONFLICT (jti) DO NOTHING RETURNING id)"
)
_PG_SPEND = f"{_PG_SPEND_WITH} SELECT {_MERCHANT}, w.kind, w.status, w.owner_ref, (SELECT count(*) FROM s), NULL FROM m LEFT JOIN w ON true"
_PG_SPEND_AND_WRITE = (
    f"{_PG_SPEND_WITH}, r AS ({_INSERT} SELECT {_PG_VALUES} FROM s RETURNING id) "
    f"SELECT {_MERCHANT}, w.kind, w.status, w.owner_ref, (SELECT count(*) FROM s), (SELECT id FROM r) FROM m LEFT JOIN w ON true"
)
_SQLITE_SPEND = ("INSERT INTO spent_codes (jti, wallet_account_id, created_at) VALUES (:jti, :wallet_id, :now) "
                 "ON CONFLICT (jti) DO NOTHING RETURNING id")
_WRITE = {"postgresql": f"{_INSERT} VALUES ({_PG_VALUES}) RETURNING id",
          "sqlite": f"{_INSERT} VALUES ({_SQLITE_VALUES}) RETURNING id"}


def _redeemed_today_sql(dialect: str, columns: tuple[str, ...]) -> str:
    p = (lambda n: f"%({n})s") if dialect == "postgresql" else (lambda n: f":{n}")
    parts = [f"(SELECT coalesce(sum(amount), 0) FROM redemptions WHERE {col} = {p(col)} "
             f"AND requested_at >= {p('start')} AND requested_at < {p('end')} AND (status = 'completed' "
             f"OR (status = 'awaiting_confirmation' AND hold_expires_at > {p('now')})))" for col in columns]
    return "SELECT " + ", ".join(parts)


_REDEEMED_TODAY = {(d, cols): _redeemed_today_sql(d, cols) for d in ("postgresql", "sqlite")
                   for cols in (("wallet_account_id",), ("merchant_id",), ("wallet_account_id", "merchant_id"))}


def _row_params(conn: Connection, row: dict[str, Any]) -> dict[str, Any]:
    return {f"r_{c}": bind_time(conn, v) if isinstance(v, dt.datetime) else v for c, v in row.items()}


def find(conn: Connection, merchant_id: int, wallet_id: int) -> Found | None:
    """The merchant and the wallet, nothing written (a card sale: the card row is locked next)."""
    sql = _PG_FIND if conn.dialect.name == "postgresql" else _SQLITE_FIND
    rows = driver_rows(conn, sql, {"merchant_id": merchant_id, "wallet_id": wallet_id})
    return Found(*rows[0]) if rows else None


def spend(conn: Connection, merchant_id: int, wallet_id: int, jti: str, now: dt.datetime,
          redemption: dict[str, Any] | None) -> Spent:
    """Read the merchant and the wallet and spend the code's ``jti`` (only when the merchant exists and the
    account is a wallet, since the spent code refers to it); with ``redemption`` (every column of
    ``REDEMPTION_COLUMNS``), also write that row once the code is spent."""
    params = {"merchant_id": merchant_id, "wallet_id": wallet_id, "jti": jti, "now": bind_time(conn, now)}
    if conn.dialect.name == "postgresql":
        if redemption is not None:
            params.update(_row_params(conn, redemption))
        rows = driver_rows(conn, _PG_SPEND if redemption is None else _PG_SPEND_AND_WRITE, params)
        if not rows:
            return Spent(None, False, None)
        return Spent(Found(*rows[0][:9]), bool(rows[0][9]), rows[0][10])
    found = find(conn, merchant_id, wallet_id)
    if found is None or found.wallet_kind != "wallet":
        return Spent(found, False, None)
    spent = bool(driver_rows(conn, _SQLITE_SPEND, params))
    redemption_id = write(conn, redemption) if spent and redemption is not None else None
    return Spent(found, spent, redemption_id)


def spend_alongside(dialect: Any, merchant_id: int, wallet_id: int, jti: str, now: dt.datetime,
                    redemption: dict[str, Any] | None) -> Alongside | None:
    """``spend`` as one statement to send with the idempotency claim (PostgreSQL; ``None`` on SQLite, where
    ``spend`` runs in the transaction as usual). Harmless if the claim finds the key taken: the transaction
    is then rolled back (``ledger.infra.idempotency``)."""
    if dialect.name != "postgresql":
        return None
    params = {"merchant_id": merchant_id, "wallet_id": wallet_id, "jti": jti, "now": now}
    if redemption is not None:
        params.update({f"r_{c}": v for c, v in redemption.items()})
    return Alongside(_PG_SPEND if redemption is None else _PG_SPEND_AND_WRITE, params)


def spent_from(read: Alongside) -> Spent:
    """What ``spend_alongside``'s statement found and wrote."""
    assert read.rows is not None, "sent with the claim"
    if not read.rows:
        return Spent(None, False, None)
    row = read.rows[0]
    return Spent(Found(*row[:9]), bool(row[9]), row[10])


def write(conn: Connection, redemption: dict[str, Any]) -> int:
    """Insert the redemption row; its id."""
    return int(driver_rows(conn, _WRITE[conn.dialect.name], _row_params(conn, redemption))[0][0])


def redeemed_today(conn: Connection, owners: dict[str, int], start: dt.datetime, end: dt.datetime,
                   now: dt.datetime) -> Alongside:
    """The read of the beans redeemed in [start, end) by each owner (``{"wallet_account_id": 7, "merchant_id":
    3}``: one statement for both), holds still open at ``now`` included: sent with the accounts' lock
    (``post_in(..., alongside=...)``), read by ``redeemed``."""
    columns = tuple(c for c in ("wallet_account_id", "merchant_id") if c in owners)
    params = {**owners, "start": bind_time(conn, start), "end": bind_time(conn, end), "now": bind_time(conn, now)}
    return Alongside(_REDEEMED_TODAY[(conn.dialect.name, columns)], params)


def redeemed(read: Alongside, owners: dict[str, int]) -> dict[str, int]:
    columns = tuple(c for c in ("wallet_account_id", "merchant_id") if c in owners)
    assert read.rows is not None, "sent with the accounts' lock"
    return {c: int(v or 0) for c, v in zip(columns, read.rows[0])}
