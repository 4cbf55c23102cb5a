"""The journal's SQL, one dialect at a time: what posting sends to PostgreSQL and to SQLite.

The common path (new transfers between known accounts) runs hand-written SQL on the driver's own
cursor: no statement building or compiling per call, and on PostgreSQL two round trips (lock and
read; then one statement that inserts the transfers and entries and updates the accounts) with
server-side prepared statements. Resolutions, reversals and retries read with SQLAlchemy Core in
``ledger.journal.posting``. No rule lives here: the rows written were worked out by
``ledger.journal.rules``. See docs/performance.md before changing a statement or a round trip.
"""

from __future__ import annotations

import datetime as dt
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection

from ledger.infra.db import Alongside, driver_rows, raise_as_sqlalchemy
from ledger.journal.models import Transfer
from ledger.journal.rules import AccountState

INSERT_CHUNK = 500  # rows per multi-row INSERT: keeps SQLite and PostgreSQL under their parameter limits
TRANSFERS = Transfer.__table__

ACCOUNT_COLUMNS = ("id, kind, status, no_negative, debits_pending, debits_posted, credits_pending, "
                   "credits_posted, entry_count, chain_head")
TRANSFER_COLUMNS = ("transfer_key", "kind", "phase", "debit_account_id", "credit_account_id", "amount",
                    "pending_id", "expires_at", "reverses_id", "batch_key", "actor", "reason", "reference")
ENTRY_COLUMNS = ("account_id", "seq", "transfer_id", "side", "pending_delta", "posted_delta", "balance_after",
                 "prev_hash", "hash")
_ENTRY_ROW = itemgetter(*ENTRY_COLUMNS)

_PG_LOCK = f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = ANY(%s::bigint[]) ORDER BY id FOR NO KEY UPDATE"
_PG_TRANSFERS_FROM = (
    "unnest(%(t_key)s::text[], %(t_kind)s::text[], %(t_phase)s::text[], %(t_debit)s::bigint[], "
    "%(t_credit)s::bigint[], %(t_amount)s::bigint[], %(t_pending)s::bigint[], %(t_expires)s::timestamptz[], "
    "%(t_reverses)s::bigint[], %(t_batch)s::text[], %(t_actor)s::text[], %(t_reason)s::text[], "
    "%(t_reference)s::text[])"
)
_PG_INSERT_TRANSFERS = (
    f"INSERT INTO transfers ({', '.join(TRANSFER_COLUMNS)}) SELECT * FROM {_PG_TRANSFERS_FROM} "
    "ON CONFLICT (transfer_key) DO NOTHING RETURNING id, transfer_key"
)
_PG_ENTRIES_FROM = (
    "unnest(%(e_key)s::text[], %(e_account)s::bigint[], %(e_seq)s::bigint[], %(e_side)s::text[], "
    "%(e_pending)s::bigint[], %(e_posted)s::bigint[], %(e_balance)s::bigint[], %(e_prev)s::text[], "
    "%(e_hash)s::text[]) WITH ORDINALITY AS u(tkey, account_id, seq, side, pd, po, bal, prev, h, ord)"
)
_PG_ACCOUNTS_FROM = (
    "unnest(%(a_id)s::bigint[], %(a_dpe)s::bigint[], %(a_dpo)s::bigint[], %(a_cpe)s::bigint[], "
    "%(a_cpo)s::bigint[], %(a_n)s::bigint[], %(a_head)s::text[]) AS v(id, dpe, dpo, cpe, cpo, n, head)"
)
_PG_UPDATE_ACCOUNTS = (
    f"UPDATE accounts SET debits_pending = v.dpe, debits_posted = v.dpo, credits_pending = v.cpe, "
    f"credits_posted = v.cpo, entry_count = v.n, chain_head = v.head FROM {_PG_ACCOUNTS_FROM} "
    "WHERE accounts.id = v.id"
)
# Everything in one statement: the entries and account totals are written only if every transfer
# was new; otherwise only the new transfers are (and the caller goes on the careful way).
_PG_POST_ALL = (
    f"WITH t AS ({_PG_INSERT_TRANSFERS}), "
    "ok AS (SELECT count(*) = %(n)s AS all_new FROM t), "
    f"e AS (INSERT INTO entries ({', '.join(ENTRY_COLUMNS)}) "
    f"SELECT u.account_id, u.seq, t.id, u.side, u.pd, u.po, u.bal, u.prev, u.h FROM {_PG_ENTRIES_FROM} "
    "JOIN t ON t.transfer_key = u.tkey WHERE (SELECT all_new FROM ok) ORDER BY u.ord), "
    f"a AS ({_PG_UPDATE_ACCOUNTS} AND (SELECT all_new FROM ok)) "
    "SELECT id, transfer_key FROM t"
)
_PG_WRITE = (  # entries (with their transfer ids) and totals, when the transfers are already in
    f"WITH e AS (INSERT INTO entries ({', '.join(ENTRY_COLUMNS)}) "
    "SELECT u.account_id, u.seq, u.tid, u.side, u.pd, u.po, u.bal, u.prev, u.h FROM "
    "unnest(%(e_tid)s::bigint[], %(e_account)s::bigint[], %(e_seq)s::bigint[], %(e_side)s::text[], "
    "%(e_pending)s::bigint[], %(e_posted)s::bigint[], %(e_balance)s::bigint[], %(e_prev)s::text[], "
    "%(e_hash)s::text[]) WITH ORDINALITY AS u(tid, account_id, seq, side, pd, po, bal, prev, h, ord) "
    f"ORDER BY u.ord) {_PG_UPDATE_ACCOUNTS}"
)

# one transfer (the common case): scalar parameters, which the driver sends far more cheaply than arrays
_PG_LOCK_2 = f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id IN (%s::bigint, %s::bigint) ORDER BY id FOR NO KEY UPDATE"
_PG_POST_ONE = (
    f"WITH t AS (INSERT INTO transfers ({', '.join(TRANSFER_COLUMNS)}) VALUES (%s::text, %s::text, %s::text, "
    "%s::bigint, %s::bigint, %s::bigint, %s::bigint, %s::timestamptz, %s::bigint, %s::text, %s::text, %s::text, "
    "%s::text) ON CONFLICT (transfer_key) DO NOTHING RETURNING id, transfer_key), "
    f"e AS (INSERT INTO entries ({', '.join(ENTRY_COLUMNS)}) "
    "SELECT u.account_id, u.seq, t.id, u.side, u.pd, u.po, u.bal, u.prev, u.h FROM t, (VALUES "
    "(%s::bigint, %s::bigint, %s::text, %s::bigint, %s::bigint, %s::bigint, %s::text, %s::text, 1), "
    "(%s::bigint, %s::bigint, %s::text, %s::bigint, %s::bigint, %s::bigint, %s::text, %s::text, 2)) "
    "AS u(account_id, seq, side, pd, po, bal, prev, h, ord) ORDER BY u.ord), "
    "a AS (UPDATE accounts SET debits_pending = v.dpe, debits_posted = v.dpo, credits_pending = v.cpe, "
    "credits_posted = v.cpo, entry_count = v.n, chain_head = v.head FROM (VALUES "
    "(%s::bigint, %s::bigint, %s::bigint, %s::bigint, %s::bigint, %s::bigint, %s::text), "
    "(%s::bigint, %s::bigint, %s::bigint, %s::bigint, %s::bigint, %s::bigint, %s::text)) "
    "AS v(id, dpe, dpo, cpe, cpo, n, head) WHERE accounts.id = v.id AND EXISTS (SELECT 1 FROM t)) "
    "SELECT id, transfer_key FROM t"
)

_SQLITE_LOCK = f"SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id IN ({{}}) ORDER BY id"
_SQLITE_INSERT_TRANSFERS = (
    f"INSERT INTO transfers ({', '.join(TRANSFER_COLUMNS)}) VALUES {{}} "
    "ON CONFLICT (transfer_key) DO NOTHING RETURNING id, transfer_key"
)
_SQLITE_ROW = "(" + ", ".join("?" * len(TRANSFER_COLUMNS)) + ")"
_SQLITE_INSERT_ENTRIES = (
    f"INSERT INTO entries ({', '.join(ENTRY_COLUMNS)}) VALUES ({', '.join('?' * len(ENTRY_COLUMNS))})"
)
_SQLITE_UPDATE_ACCOUNTS = (
    "UPDATE accounts SET debits_pending = ?, debits_posted = ?, credits_pending = ?, credits_posted = ?, "
    "entry_count = ?, chain_head = ? WHERE id = ?"
)


def _is_pg(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def lock_accounts(conn: Connection, account_ids: list[int], alongside: Alongside | None = None) -> dict[int, AccountState]:
    """Lock the accounts in id order and read their state (one round trip, with the transaction's BEGIN
    when it has not begun yet, and with the caller's ``alongside`` read, run once the locks are granted:
    ``ledger.infra.db.driver_rows``)."""
    if _is_pg(conn):
        sql, params = (_PG_LOCK_2, account_ids) if len(account_ids) == 2 else (_PG_LOCK, (_int_array(account_ids),))
    else:
        sql, params = _SQLITE_LOCK.format(", ".join("?" * len(account_ids))), account_ids
    return {row[0]: AccountState(*row) for row in driver_rows(conn, sql, params, alongside=alongside)}


def _sqlite_expires(conn: Connection, value: dt.datetime | None) -> Any:
    if value is None:
        return None
    proc = TRANSFERS.c.expires_at.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return proc(value) if proc else value


# Arrays go to PostgreSQL as array literals built here ("{1,2,3}", '{"a","b\\"c"}'), cast by the SQL
# (``%(x)s::bigint[]``): one string per array, built by str.join in C, where the driver's own array
# dumper inspects and quotes every element in Python (two thirds of a batch's client time).

def _nulls(n: int) -> str:
    return "{" + ",".join(["NULL"] * n) + "}"


def _int_array(values: list[Any]) -> str:
    if None not in values:  # the common case, in C: ids, amounts, totals
        return "{" + ",".join(map(str, map(int, values))) + "}"
    if values.count(None) == len(values):  # a column nobody in the batch uses (holds, reversals)
        return _nulls(len(values))
    return "{" + ",".join(["NULL" if v is None else str(int(v)) for v in values]) + "}"


def _text_array(values: list[Any]) -> str:
    if None not in values:
        probe = "".join(values)  # (the separator below holds quotes itself: look at the values alone)
        if '"' not in probe and "\\" not in probe:  # hashes, kinds, most keys and reasons: nothing to escape
            return '{"' + '","'.join(values) + '"}' if values else "{}"
    elif values.count(None) == len(values):  # references, batch keys of lone transfers
        return _nulls(len(values))
    return "{" + ",".join(["NULL" if v is None else '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
                           for v in values]) + "}"


def _time_array(values: list[Any]) -> str:
    return "{" + ",".join(["NULL" if v is None else '"' + v.isoformat() + '"' for v in values]) + "}"


def _transfer_params(rows: list[dict[str, Any]]) -> dict[str, str]:
    col = lambda name: [r[name] for r in rows]
    return {
        "t_key": _text_array(col("transfer_key")), "t_kind": _text_array(col("kind")),
        "t_phase": _text_array(col("phase")), "t_debit": _int_array(col("debit_account_id")),
        "t_credit": _int_array(col("credit_account_id")), "t_amount": _int_array(col("amount")),
        "t_pending": _int_array(col("pending_id")), "t_expires": _time_array(col("expires_at")),
        "t_reverses": _int_array(col("reverses_id")), "t_batch": _text_array(col("batch_key")),
        "t_actor": _text_array(col("actor")), "t_reason": _text_array(col("reason")),
        "t_reference": _text_array(col("reference")),
    }


def _entry_params(entries: list[dict[str, Any]], key_or_tid: str) -> dict[str, str]:
    col = lambda name: [e[name] for e in entries]
    return {
        key_or_tid: (_text_array(col("transfer_key")) if key_or_tid == "e_key" else _int_array(col("transfer_id"))),
        "e_account": _int_array(col("account_id")), "e_seq": _int_array(col("seq")),
        "e_side": _text_array(col("side")), "e_pending": _int_array(col("pending_delta")),
        "e_posted": _int_array(col("posted_delta")), "e_balance": _int_array(col("balance_after")),
        "e_prev": _text_array(col("prev_hash")), "e_hash": _text_array(col("hash")),
    }


def _account_params(touched: list[AccountState]) -> dict[str, str]:
    return {
        "a_id": _int_array([a.id for a in touched]), "a_dpe": _int_array([a.debits_pending for a in touched]),
        "a_dpo": _int_array([a.debits_posted for a in touched]), "a_cpe": _int_array([a.credits_pending for a in touched]),
        "a_cpo": _int_array([a.credits_posted for a in touched]), "a_n": _int_array([a.entry_count for a in touched]),
        "a_head": _text_array([a.chain_head for a in touched]),
    }


def insert_transfers(conn: Connection, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Claim the keys: insert the transfers whose key is free; returns key -> id of those inserted."""
    cur = conn.connection.cursor()
    new_ids: dict[str, int] = {}
    try:
        if _is_pg(conn):
            cur.execute(_PG_INSERT_TRANSFERS, _transfer_params(rows))
            new_ids.update((key, tid) for tid, key in cur.fetchall())
            return new_ids
        for start in range(0, len(rows), INSERT_CHUNK):
            chunk = rows[start:start + INSERT_CHUNK]
            params: list[Any] = []
            for r in chunk:
                params.extend([r["transfer_key"], r["kind"], r["phase"], r["debit_account_id"], r["credit_account_id"],
                               r["amount"], r["pending_id"], _sqlite_expires(conn, r["expires_at"]), r["reverses_id"],
                               r["batch_key"], r["actor"], r["reason"], r["reference"]])
            cur.execute(_SQLITE_INSERT_TRANSFERS.format(", ".join([_SQLITE_ROW] * len(chunk))), params)
            new_ids.update((key, tid) for tid, key in cur.fetchall())
        return new_ids
    except Exception as exc:
        raise_as_sqlalchemy(conn, exc)
        raise
    finally:
        cur.close()


def write_entries_and_totals(conn: Connection, entries: list[dict[str, Any]], touched: list[AccountState]) -> None:
    cur = conn.connection.cursor()
    try:
        if _is_pg(conn):
            cur.execute(_PG_WRITE, {**_entry_params(entries, "e_tid"), **_account_params(touched)})
        else:
            cur.executemany(_SQLITE_INSERT_ENTRIES, [_ENTRY_ROW(e) for e in entries])
            cur.executemany(_SQLITE_UPDATE_ACCOUNTS, [
                (a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted, a.entry_count,
                 a.chain_head, a.id) for a in touched])
    except Exception as exc:
        raise_as_sqlalchemy(conn, exc)
        raise
    finally:
        cur.close()


def post_all_new(conn: Connection, rows: list[dict[str, Any]], entries: list[dict[str, Any]],
                  touched: list[AccountState]) -> tuple[dict[str, int], bool]:
    """Insert the transfers and, if every one of them was new, their entries and the accounts' totals.

    Returns the ids of the transfers inserted and whether everything was written."""
    if _is_pg(conn):
        if 2 * len(rows) != len(entries):
            raise AssertionError("two entries per transfer")
        cur = conn.connection.cursor()
        try:
            if len(rows) == 1 and len(touched) == 2:
                d, c = entries
                cur.execute(_PG_POST_ONE, (
                    *(rows[0][col] for col in TRANSFER_COLUMNS),
                    d["account_id"], d["seq"], d["side"], d["pending_delta"], d["posted_delta"], d["balance_after"],
                    d["prev_hash"], d["hash"],
                    c["account_id"], c["seq"], c["side"], c["pending_delta"], c["posted_delta"], c["balance_after"],
                    c["prev_hash"], c["hash"],
                    *(v for a in touched for v in (a.id, a.debits_pending, a.debits_posted, a.credits_pending,
                                                   a.credits_posted, a.entry_count, a.chain_head)),
                ))
            else:
                cur.execute(_PG_POST_ALL, {"n": len(rows), **_transfer_params(rows),
                                           **_entry_params(entries, "e_key"), **_account_params(touched)})
            new_ids = {key: tid for tid, key in cur.fetchall()}
        except Exception as exc:
            raise_as_sqlalchemy(conn, exc)
            raise
        finally:
            cur.close()
        return new_ids, len(new_ids) == len(rows)
    new_ids = insert_transfers(conn, rows)
    if len(new_ids) != len(rows):
        return new_ids, False
    for e in entries:
        e["transfer_id"] = new_ids[e.pop("transfer_key")]
    write_entries_and_totals(conn, entries, touched)
    return new_ids, True
