"""Posting: the hot path that moves beans. Every transfer in the product goes through ``post_batch``.

One call is one linked batch (a single transfer is a batch of one): all of it commits, or none of it
does. It runs inside the caller's transaction, with hand-written SQL on the driver's cursor for the
common path and few round trips:

1. look up the holds and originals that resolutions and reversals name (only if there are any);
2. lock every account involved, in id order (on PostgreSQL ``FOR NO KEY UPDATE``, sent together with
   the transaction's BEGIN: unlike ``FOR UPDATE`` it does not conflict with the ``FOR KEY SHARE`` lock
   that inserting a row with a foreign key to the account takes, so a use case that first writes
   such a row (a spent code) cannot deadlock with another; SQLite's ``BEGIN IMMEDIATE`` already holds
   the write lock);
3. read what earlier resolutions and reversals already did to them (only if needed);
4. the common case: check every rule for each transfer in order against copies of the locked
   balances, build its two entries and extend both accounts' hash chains; if all pass, one write
   inserts the transfers with ``ON CONFLICT (transfer_key) DO NOTHING`` and, only if no key was taken,
   the entries and the accounts' new totals (on PostgreSQL a single statement, so a transfer is four
   round trips in all with BEGIN and COMMIT);
5. otherwise (a rule refuses, or a key is already taken) the careful path decides from the untouched
   state: a key that is already taken is a retry, answered from the stored transfer, or
   ``exists_with_different_fields``; then every rule for each new transfer, in order; then the
   entries and totals.

Both paths give the same answers and write the same rows. A refusal raises ``DomainError`` and the
caller's transaction rolls back, so it changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy import exc as sa_exc

from ledger import errors
from ledger.errors import DomainError
from ledger.infra.db import utc_from_db
from ledger.invariants import InvariantViolation, invariant
from ledger.journal.chain import entry_hash
from ledger.journal.models import TRANSFER_KINDS, Account, Entry, Transfer

MAX_AMOUNT = 10**12  # one transfer; far above any real award, far below BIGINT
MAX_TOTAL = 2**63 - 1
MAX_BATCH = 8_000
MAX_KEY_LENGTH = 100
MAX_HOLD_TIMEOUT_S = 31 * 24 * 3600
MAX_REASON_LENGTH = 2_000
INSERT_CHUNK = 500  # rows per multi-row INSERT: keeps SQLite and PostgreSQL under their parameter limits

ACCOUNTS = Account.__table__
TRANSFERS = Transfer.__table__
ENTRIES = Entry.__table__


@dataclass(frozen=True)
class TransferRequest:
    """What a caller asks for. Build it with ``transfer``, ``hold``, ``post_hold``, ``void_hold``,
    ``reversal`` below rather than by hand."""

    transfer_key: str
    kind: str
    phase: str = "single"
    debit_account_id: int | None = None
    credit_account_id: int | None = None
    amount: int | None = None
    pending_key: str | None = None
    timeout_s: int | None = None
    reverses_key: str | None = None
    actor: str = "system"
    reason: str = ""
    reference: str | None = None


@dataclass(frozen=True)
class PostedTransfer:
    id: int
    transfer_key: str
    kind: str
    phase: str
    debit_account_id: int
    credit_account_id: int
    amount: int
    pending_id: int | None
    reverses_id: int | None
    expires_at: dt.datetime | None
    actor: str
    reason: str
    reference: str | None
    batch_key: str | None
    replayed: bool = False  # True when this answer is a retry's: nothing changed


def transfer(key: str, kind: str, debit: int, credit: int, amount: int, *, actor: str = "system",
             reason: str = "", reference: str | None = None) -> TransferRequest:
    return TransferRequest(key, kind, "single", debit, credit, amount, actor=actor, reason=reason,
                           reference=reference)


def hold(key: str, kind: str, debit: int, credit: int, amount: int, timeout_s: int, *,
         actor: str = "system", reason: str = "", reference: str | None = None) -> TransferRequest:
    return TransferRequest(key, kind, "pending", debit, credit, amount, timeout_s=timeout_s, actor=actor,
                           reason=reason, reference=reference)


def post_hold(key: str, pending_key: str, amount: int | None = None, *, actor: str = "system",
              reason: str = "", reference: str | None = None) -> TransferRequest:
    """Post a hold in full (``amount=None``) or in part; the rest is released."""
    return TransferRequest(key, "", "post", amount=amount, pending_key=pending_key, actor=actor,
                           reason=reason, reference=reference)


def void_hold(key: str, pending_key: str, *, actor: str = "system", reason: str = "",
              reference: str | None = None) -> TransferRequest:
    return TransferRequest(key, "", "void", pending_key=pending_key, actor=actor, reason=reason,
                           reference=reference)


def reversal(key: str, reverses_key: str, amount: int, *, actor: str = "system", reason: str = "",
             reference: str | None = None) -> TransferRequest:
    return TransferRequest(key, "reverse", "single", amount=amount, reverses_key=reverses_key, actor=actor,
                           reason=reason, reference=reference)


# --- shape checks ------------------------------------------------------------------------------------

def _check_shape(req: TransferRequest) -> None:
    if not isinstance(req.transfer_key, str) or not 1 <= len(req.transfer_key) <= MAX_KEY_LENGTH:
        raise DomainError(errors.VALIDATION_FAILED, f"transfer id must be 1 to {MAX_KEY_LENGTH} characters")
    if len(req.reason) > MAX_REASON_LENGTH or len(req.actor) > 80 or len(req.reference or "") > 120:
        raise DomainError(errors.VALIDATION_FAILED, "reason, actor or reference is too long")
    if req.amount is not None and (
        type(req.amount) is not int or not 1 <= req.amount <= MAX_AMOUNT  # bool is not an amount
    ):
        raise DomainError(errors.INVALID_AMOUNT, f"amount must be a whole number from 1 to {MAX_AMOUNT}")
    if req.phase in ("single", "pending"):
        if req.reverses_key is None:
            if req.kind not in TRANSFER_KINDS or req.kind == "reverse":
                raise DomainError(errors.UNKNOWN_TRANSFER_KIND, f"no transfer kind {req.kind!r}")
            if req.amount is None:
                raise DomainError(errors.INVALID_AMOUNT, "amount is required")
            if type(req.debit_account_id) is not int or type(req.credit_account_id) is not int:
                raise DomainError(errors.VALIDATION_FAILED, "debit and credit accounts are required")
            if req.debit_account_id == req.credit_account_id:
                raise DomainError(errors.SAME_ACCOUNT)
        elif req.amount is None or req.phase != "single":
            raise DomainError(errors.INVALID_AMOUNT, "a reversal names its amount")
    if req.phase == "pending":
        if type(req.timeout_s) is not int or not 1 <= req.timeout_s <= MAX_HOLD_TIMEOUT_S:
            raise DomainError(errors.INVALID_TIMEOUT)
    elif req.phase == "single":
        pass
    elif req.phase in ("post", "void", "expire"):
        if not req.pending_key:
            raise DomainError(errors.VALIDATION_FAILED, "a hold resolution names its hold")
        if req.phase != "post" and req.amount is not None:
            raise DomainError(errors.VALIDATION_FAILED, "void and expire release the whole hold")
    else:
        raise DomainError(errors.VALIDATION_FAILED, f"no transfer phase {req.phase!r}")


# --- the posting itself ------------------------------------------------------------------------------

@dataclass
class _AccountState:
    id: int
    kind: str
    status: str
    no_negative: bool
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int
    entry_count: int
    chain_head: str
    touched: bool = False


def _posted_from_row(row: Any, replayed: bool) -> PostedTransfer:
    return PostedTransfer(
        id=row.id, transfer_key=row.transfer_key, kind=row.kind, phase=row.phase,
        debit_account_id=row.debit_account_id, credit_account_id=row.credit_account_id, amount=row.amount,
        pending_id=row.pending_id, reverses_id=row.reverses_id, expires_at=utc_from_db(row.expires_at),
        actor=row.actor, reason=row.reason, reference=row.reference, batch_key=row.batch_key,
        replayed=replayed,
    )


_SAME_FIELDS = ("kind", "phase", "debit_account_id", "credit_account_id", "amount", "pending_id",
                "reverses_id", "actor", "reason", "reference")


# --- driver-level SQL for the hot path -----------------------------------------------------------
# The common path (new transfers between known accounts) runs hand-written SQL on the driver's own
# cursor: no statement building or compiling per call, and on PostgreSQL two round trips (lock and
# read; then one statement that inserts the transfers and entries and updates the accounts) with
# server-side prepared statements. Resolutions, reversals and retries read with SQLAlchemy Core.

_ACCOUNT_COLUMNS = ("id, kind, status, no_negative, debits_pending, debits_posted, credits_pending, "
                    "credits_posted, entry_count, chain_head")
_TRANSFER_COLUMNS = ("transfer_key", "kind", "phase", "debit_account_id", "credit_account_id", "amount",
                     "pending_id", "expires_at", "reverses_id", "batch_key", "actor", "reason", "reference")
_ENTRY_COLUMNS = ("account_id", "seq", "transfer_id", "side", "pending_delta", "posted_delta", "balance_after",
                  "prev_hash", "hash")
_ENTRY_ROW = itemgetter(*_ENTRY_COLUMNS)

_PG_LOCK = f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE id = ANY(%s::bigint[]) ORDER BY id FOR NO KEY UPDATE"
_PG_TRANSFERS_FROM = (
    "unnest(%(t_key)s::text[], %(t_kind)s::text[], %(t_phase)s::text[], %(t_debit)s::bigint[], "
    "%(t_credit)s::bigint[], %(t_amount)s::bigint[], %(t_pending)s::bigint[], %(t_expires)s::timestamptz[], "
    "%(t_reverses)s::bigint[], %(t_batch)s::text[], %(t_actor)s::text[], %(t_reason)s::text[], "
    "%(t_reference)s::text[])"
)
_PG_INSERT_TRANSFERS = (
    f"INSERT INTO transfers ({', '.join(_TRANSFER_COLUMNS)}) SELECT * FROM {_PG_TRANSFERS_FROM} "
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
    f"e AS (INSERT INTO entries ({', '.join(_ENTRY_COLUMNS)}) "
    f"SELECT u.account_id, u.seq, t.id, u.side, u.pd, u.po, u.bal, u.prev, u.h FROM {_PG_ENTRIES_FROM} "
    "JOIN t ON t.transfer_key = u.tkey WHERE (SELECT all_new FROM ok) ORDER BY u.ord), "
    f"a AS ({_PG_UPDATE_ACCOUNTS} AND (SELECT all_new FROM ok)) "
    "SELECT id, transfer_key FROM t"
)
_PG_WRITE = (  # entries (with their transfer ids) and totals, when the transfers are already in
    f"WITH e AS (INSERT INTO entries ({', '.join(_ENTRY_COLUMNS)}) "
    "SELECT u.account_id, u.seq, u.tid, u.side, u.pd, u.po, u.bal, u.prev, u.h FROM "
    "unnest(%(e_tid)s::bigint[], %(e_account)s::bigint[], %(e_seq)s::bigint[], %(e_side)s::text[], "
    "%(e_pending)s::bigint[], %(e_posted)s::bigint[], %(e_balance)s::bigint[], %(e_prev)s::text[], "
    "%(e_hash)s::text[]) WITH ORDINALITY AS u(tid, account_id, seq, side, pd, po, bal, prev, h, ord) "
    f"ORDER BY u.ord) {_PG_UPDATE_ACCOUNTS}"
)

# one transfer (the common case): scalar parameters, which the driver sends far more cheaply than arrays
_PG_LOCK_2 = f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE id IN (%s::bigint, %s::bigint) ORDER BY id FOR NO KEY UPDATE"
_PG_POST_ONE = (
    f"WITH t AS (INSERT INTO transfers ({', '.join(_TRANSFER_COLUMNS)}) VALUES (%s::text, %s::text, %s::text, "
    "%s::bigint, %s::bigint, %s::bigint, %s::bigint, %s::timestamptz, %s::bigint, %s::text, %s::text, %s::text, "
    "%s::text) ON CONFLICT (transfer_key) DO NOTHING RETURNING id, transfer_key), "
    f"e AS (INSERT INTO entries ({', '.join(_ENTRY_COLUMNS)}) "
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

_SQLITE_LOCK = f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE id IN ({{}}) ORDER BY id"
_SQLITE_INSERT_TRANSFERS = (
    f"INSERT INTO transfers ({', '.join(_TRANSFER_COLUMNS)}) VALUES {{}} "
    "ON CONFLICT (transfer_key) DO NOTHING RETURNING id, transfer_key"
)
_SQLITE_ROW = "(" + ", ".join("?" * len(_TRANSFER_COLUMNS)) + ")"
_SQLITE_INSERT_ENTRIES = (
    f"INSERT INTO entries ({', '.join(_ENTRY_COLUMNS)}) VALUES ({', '.join('?' * len(_ENTRY_COLUMNS))})"
)
_SQLITE_UPDATE_ACCOUNTS = (
    "UPDATE accounts SET debits_pending = ?, debits_posted = ?, credits_pending = ?, credits_posted = ?, "
    "entry_count = ?, chain_head = ? WHERE id = ?"
)


def _raise_as_sqlalchemy(conn: Connection, exc: Exception) -> None:
    """Raise a driver's error as ``Connection.execute`` would have (``IntegrityError``, ``OperationalError``,
    ...: a ``DBAPIError`` wrapping it), so that ``Books.run`` still retries deadlocks and serialization
    failures and callers see the same exceptions as with SQLAlchemy's own statements. Other exceptions
    are left alone."""
    dbapi = conn.dialect.loaded_dbapi
    if not isinstance(exc, dbapi.Error):
        return
    invalidated = conn.dialect.is_disconnect(exc, conn.connection.dbapi_connection, None)
    wrapped = sa_exc.DBAPIError.instance(None, None, exc, dbapi.Error, connection_invalidated=invalidated,
                                         dialect=conn.dialect)
    if invalidated:
        conn.invalidate(wrapped)
    raise wrapped from exc


def _is_pg(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def _lock_accounts(conn: Connection, account_ids: list[int]) -> dict[int, _AccountState]:
    """Lock the accounts in id order and read their state (one round trip)."""
    cur = conn.connection.cursor()
    try:
        if _is_pg(conn):
            sql, params = (_PG_LOCK_2, account_ids) if len(account_ids) == 2 else (_PG_LOCK, (_int_array(account_ids),))
            driver = conn.connection.driver_connection
            if driver.info.transaction_status == 0:  # idle: let BEGIN travel with the query
                with driver.pipeline():
                    cur.execute(sql, params)
            else:
                cur.execute(sql, params)
        else:
            cur.execute(_SQLITE_LOCK.format(", ".join("?" * len(account_ids))), account_ids)
        return {row[0]: _AccountState(*row) for row in cur.fetchall()}
    except Exception as exc:
        _raise_as_sqlalchemy(conn, exc)
        raise
    finally:
        cur.close()


def _sqlite_expires(conn: Connection, value: dt.datetime | None) -> Any:
    if value is None:
        return None
    proc = TRANSFERS.c.expires_at.type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    return proc(value) if proc else value


# Arrays go to PostgreSQL as array literals built here ("{1,2,3}", '{"a","b\\"c"}'), cast by the SQL
# (``%(x)s::bigint[]``): one string per array, built by str.join in C, where the driver's own array
# dumper inspects and quotes every element in Python (two thirds of a batch's client time).

def _int_array(values: list[Any]) -> str:
    return "{" + ",".join(["NULL" if v is None else str(int(v)) for v in values]) + "}"


def _text_array(values: list[Any]) -> str:
    if None not in values:
        body = '","'.join(values)
        if '"' not in body and "\\" not in body:  # hashes, kinds, most keys: nothing to escape
            return '{"' + body + '"}' if values else "{}"
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


def _account_params(touched: list[_AccountState]) -> dict[str, str]:
    return {
        "a_id": _int_array([a.id for a in touched]), "a_dpe": _int_array([a.debits_pending for a in touched]),
        "a_dpo": _int_array([a.debits_posted for a in touched]), "a_cpe": _int_array([a.credits_pending for a in touched]),
        "a_cpo": _int_array([a.credits_posted for a in touched]), "a_n": _int_array([a.entry_count for a in touched]),
        "a_head": _text_array([a.chain_head for a in touched]),
    }


def _insert_transfers(conn: Connection, rows: list[dict[str, Any]]) -> dict[str, int]:
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
        _raise_as_sqlalchemy(conn, exc)
        raise
    finally:
        cur.close()


def _write_entries_and_totals(conn: Connection, entries: list[dict[str, Any]], touched: list[_AccountState]) -> None:
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
        _raise_as_sqlalchemy(conn, exc)
        raise
    finally:
        cur.close()


def _post_all_new(conn: Connection, rows: list[dict[str, Any]], entries: list[dict[str, Any]],
                  touched: list[_AccountState]) -> tuple[dict[str, int], bool]:
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
                    *(rows[0][col] for col in _TRANSFER_COLUMNS),
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
            _raise_as_sqlalchemy(conn, exc)
            raise
        finally:
            cur.close()
        return new_ids, len(new_ids) == len(rows)
    new_ids = _insert_transfers(conn, rows)
    if len(new_ids) != len(rows):
        return new_ids, False
    for e in entries:
        e["transfer_id"] = new_ids[e.pop("transfer_key")]
    _write_entries_and_totals(conn, entries, touched)
    return new_ids, True


def _fail(batch: bool, index: int, key: str, exc: DomainError) -> DomainError:
    if not batch:
        return exc
    return DomainError(
        errors.LINKED_TRANSFER_FAILED,
        f"transfer {index} ({key}) failed: {exc.code}: {exc.message}",
        index=index, transfer_key=key, cause=exc.code,
    )


def _posted_new(transfer_id: int, req: TransferRequest, row: dict[str, Any]) -> PostedTransfer:
    return PostedTransfer(
        id=transfer_id, transfer_key=req.transfer_key, kind=req.kind, phase=req.phase,
        debit_account_id=row["debit_account_id"], credit_account_id=row["credit_account_id"],
        amount=row["amount"], pending_id=row["pending_id"], reverses_id=row["reverses_id"],
        expires_at=row["expires_at"], actor=req.actor, reason=req.reason, reference=req.reference,
        batch_key=row["batch_key"],
    )


def _copy_state(acc: _AccountState) -> _AccountState:
    copy = _AccountState.__new__(_AccountState)
    copy.__dict__ = acc.__dict__.copy()
    return copy


def _trial(resolved: list[TransferRequest], rows: list[dict[str, Any]], named: dict[str, Any],
           accounts: dict[int, _AccountState], reversed_so_far: dict[int, int],
           now: dt.datetime) -> tuple[list[dict[str, Any]], dict[int, _AccountState]] | None:
    """Every rule and both entries of every transfer, as if all were new, on copies of the locked state.

    ``None`` when any rule refuses (or anything else goes wrong): the careful path then decides, in
    its order (retries first, then the rules), from the untouched state."""
    trial_accounts = {k: _copy_state(v) for k, v in accounts.items()}
    trial_reversed = dict(reversed_so_far)
    entries: list[dict[str, Any]] = []
    try:
        for req, row in zip(resolved, rows):
            _apply(req, row, named, trial_accounts, trial_reversed, now)
            for e in _entries_for(0, req, row, named, trial_accounts):
                e["transfer_key"] = req.transfer_key
                entries.append(e)
    except (DomainError, InvariantViolation):
        return None
    return entries, trial_accounts


def post_batch(conn: Connection, requests: Sequence[TransferRequest], *, now: dt.datetime,
               batch_key: str | None = None) -> list[PostedTransfer]:
    """Post ``requests`` all-or-nothing inside the caller's transaction (see the module doc)."""
    if not requests:
        raise DomainError(errors.BATCH_EMPTY)
    if len(requests) > MAX_BATCH:
        raise DomainError(errors.BATCH_TOO_LARGE, f"at most {MAX_BATCH} transfers in one batch")
    linked = len(requests) > 1
    keys = [r.transfer_key for r in requests]
    for i, req in enumerate(requests):
        try:
            _check_shape(req)
        except DomainError as exc:
            raise _fail(linked, i, str(req.transfer_key), exc) from None
    if len(set(keys)) != len(keys):
        raise DomainError(errors.DUPLICATE_ID_IN_BATCH)
    if batch_key is None and linked:
        batch_key = keys[0]

    # 1. the holds and originals that resolutions and reversals name
    named_keys = {r.pending_key for r in requests if r.pending_key} | {
        r.reverses_key for r in requests if r.reverses_key}
    named: dict[str, Any] = {}
    if named_keys:
        rows = conn.execute(select(TRANSFERS).where(TRANSFERS.c.transfer_key.in_(named_keys))).all()
        named = {row.transfer_key: row for row in rows}

    resolved: list[TransferRequest] = []
    for i, req in enumerate(requests):
        try:
            resolved.append(_resolve_accounts(req, named))
        except DomainError as exc:
            raise _fail(linked, i, req.transfer_key, exc) from None

    # 2. lock every account involved, in id order
    account_ids = sorted({a for r in resolved for a in (r.debit_account_id, r.credit_account_id)})
    accounts = _lock_accounts(conn, account_ids)
    if len(accounts) != len(account_ids):
        for i, req in enumerate(resolved):
            for acc_id in (req.debit_account_id, req.credit_account_id):
                if acc_id not in accounts:
                    exc = DomainError(errors.ACCOUNT_NOT_FOUND, account_id=acc_id)
                    raise _fail(linked, i, req.transfer_key, exc)

    # 3. what earlier resolutions and reversals already did (read under the account locks)
    resolver_of: dict[int, str] = {}  # hold id -> key of the transfer that resolved it
    reversed_so_far: dict[int, int] = {}
    hold_ids = [named[r.pending_key].id for r in resolved if r.pending_key]
    if hold_ids:
        resolver_of = dict(conn.execute(
            select(TRANSFERS.c.pending_id, TRANSFERS.c.transfer_key).where(TRANSFERS.c.pending_id.in_(hold_ids))
        ).all())
        for i, req in enumerate(resolved):
            if not req.pending_key:
                continue
            hold_id = named[req.pending_key].id
            resolver = resolver_of.setdefault(hold_id, req.transfer_key)
            if resolver != req.transfer_key:  # a retry of the resolver itself is answered below
                exc = DomainError(errors.PENDING_ALREADY_RESOLVED, pending_key=req.pending_key)
                raise _fail(linked, i, req.transfer_key, exc)
    original_ids = [named[r.reverses_key].id for r in resolved if r.reverses_key]
    if original_ids:
        reversed_so_far = dict(conn.execute(
            select(TRANSFERS.c.reverses_id, func.sum(TRANSFERS.c.amount))
            .where(TRANSFERS.c.reverses_id.in_(original_ids))
            .group_by(TRANSFERS.c.reverses_id)).all())

    rows_to_insert = []
    for req in resolved:
        expires_at = now + dt.timedelta(seconds=req.timeout_s) if req.phase == "pending" else None
        rows_to_insert.append({
            "transfer_key": req.transfer_key, "kind": req.kind, "phase": req.phase,
            "debit_account_id": req.debit_account_id, "credit_account_id": req.credit_account_id,
            "amount": req.amount,
            "pending_id": named[req.pending_key].id if req.pending_key else None,
            "expires_at": expires_at,
            "reverses_id": named[req.reverses_key].id if req.reverses_key else None,
            "batch_key": batch_key if linked else None,
            "actor": req.actor, "reason": req.reason, "reference": req.reference,
        })

    # 4. the common case: every transfer is new and passes every rule. Work that out on copies of the
    # locked state; then one write claims the keys and, if none was taken, records everything.
    new_ids: dict[str, int] | None = None
    trial = _trial(resolved, rows_to_insert, named, accounts, reversed_so_far, now)
    if trial is not None:
        trial_entries, trial_accounts = trial
        new_ids, complete = _post_all_new(conn, rows_to_insert, trial_entries,
                                          [a for a in trial_accounts.values() if a.touched])
        if complete:
            return [_posted_new(new_ids[req.transfer_key], req, row) for req, row in zip(resolved, rows_to_insert)]

    # otherwise, carefully: claim the keys (unless done above); a key already taken is a retry
    if new_ids is None:
        new_ids = _insert_transfers(conn, rows_to_insert)

    results: list[PostedTransfer | None] = [None] * len(resolved)
    taken = [r.transfer_key for r in resolved if r.transfer_key not in new_ids]
    if taken:
        existing = {row.transfer_key: row for row in conn.execute(
            select(TRANSFERS).where(TRANSFERS.c.transfer_key.in_(taken)))}
        for i, (req, row) in enumerate(zip(resolved, rows_to_insert)):
            if req.transfer_key in new_ids:
                continue
            stored = existing[req.transfer_key]
            if any(getattr(stored, f) != row[f] for f in _SAME_FIELDS):
                exc = DomainError(errors.EXISTS_WITH_DIFFERENT_FIELDS, transfer_key=req.transfer_key)
                raise _fail(linked, i, req.transfer_key, exc)
            results[i] = _posted_from_row(stored, replayed=True)

    # 5. every rule, in order, against the locked balances; then the entries and chains
    entries: list[dict[str, Any]] = []
    for i, (req, row) in enumerate(zip(resolved, rows_to_insert)):
        if results[i] is not None:
            continue
        try:
            _apply(req, row, named, accounts, reversed_so_far, now)
        except DomainError as exc:
            raise _fail(linked, i, req.transfer_key, exc) from None
        transfer_id = new_ids[req.transfer_key]
        entries.extend(_entries_for(transfer_id, req, row, named, accounts))
        results[i] = _posted_new(transfer_id, req, row)

    # 6. write
    if entries:
        _write_entries_and_totals(conn, entries, [a for a in accounts.values() if a.touched])
    out = [r for r in results if r is not None]
    invariant(len(out) == len(requests), "every request has an outcome")
    return out


def _resolve_accounts(req: TransferRequest, named: dict[str, Any]) -> TransferRequest:
    """Fill in what a resolution or a reversal takes from the transfer it names."""
    if req.pending_key:
        held = named.get(req.pending_key)
        if held is None:
            raise DomainError(errors.PENDING_NOT_FOUND, pending_key=req.pending_key)
        if held.phase != "pending":
            raise DomainError(errors.NOT_A_PENDING_TRANSFER, pending_key=req.pending_key)
        amount = req.amount if req.phase == "post" and req.amount is not None else held.amount
        return replace(req, kind=held.kind, debit_account_id=held.debit_account_id,
                       credit_account_id=held.credit_account_id, amount=amount)
    if req.reverses_key:
        original = named.get(req.reverses_key)
        if original is None:
            raise DomainError(errors.TRANSFER_NOT_FOUND, transfer_key=req.reverses_key)
        if original.phase not in ("single", "post") or original.kind == "reverse":
            raise DomainError(errors.NOT_REVERSIBLE, "only posted transfers that are not reversals can be reversed")
        return replace(req, debit_account_id=original.credit_account_id,
                       credit_account_id=original.debit_account_id)
    return req


def _check_status(acc: _AccountState, req: TransferRequest) -> None:
    if req.phase in ("void", "expire"):
        return  # releasing a hold must always work
    if acc.status == "closed":
        raise DomainError(errors.ACCOUNT_CLOSED, account_id=acc.id)
    if acc.status == "frozen" and req.kind not in ("reverse", "adjust"):
        spec = errors.WALLET_FROZEN if acc.kind == "wallet" else errors.ACCOUNT_FROZEN
        raise DomainError(spec, account_id=acc.id)


def _apply(req: TransferRequest, row: dict[str, Any], named: dict[str, Any], accounts: dict[int, _AccountState],
           reversed_so_far: dict[int, int], now: dt.datetime) -> None:
    debit = accounts.get(row["debit_account_id"])
    credit = accounts.get(row["credit_account_id"])
    if debit is None or credit is None:
        missing = row["debit_account_id"] if debit is None else row["credit_account_id"]
        raise DomainError(errors.ACCOUNT_NOT_FOUND, account_id=missing)
    _check_status(debit, req)
    _check_status(credit, req)
    amount = row["amount"]

    if req.pending_key:
        held = named[req.pending_key]
        expired = utc_from_db(held.expires_at) <= now
        if req.phase in ("post", "void") and expired:
            raise DomainError(errors.PENDING_EXPIRED, pending_key=req.pending_key)
        if req.phase == "expire" and not expired:
            raise DomainError(errors.VALIDATION_FAILED, "the hold has not expired yet")
        if amount > held.amount:
            raise DomainError(errors.EXCEEDS_PENDING_AMOUNT, held=held.amount)
        debit.debits_pending -= held.amount
        credit.credits_pending -= held.amount
        if req.phase == "post":
            debit.debits_posted += amount
            credit.credits_posted += amount
    elif req.phase == "pending":
        debit.debits_pending += amount
        credit.credits_pending += amount
    else:
        if req.reverses_key:
            original = named[req.reverses_key]
            done = reversed_so_far.get(original.id, 0)
            if done + amount > original.amount:
                raise DomainError(errors.EXCEEDS_REVERSIBLE_AMOUNT, remaining=original.amount - done)
            reversed_so_far[original.id] = done + amount
        debit.debits_posted += amount
        credit.credits_posted += amount

    for acc in (debit, credit):
        if max(acc.debits_posted + acc.debits_pending, acc.credits_posted + acc.credits_pending) > MAX_TOTAL:
            raise DomainError(errors.INVALID_AMOUNT, "the account's totals would overflow", account_id=acc.id)
        invariant(min(acc.debits_pending, acc.credits_pending, acc.debits_posted, acc.credits_posted) >= 0,
                  "running totals never go below zero")
    if debit.no_negative and debit.debits_posted + debit.debits_pending > debit.credits_posted:
        raise DomainError(errors.INSUFFICIENT_FUNDS, account_id=debit.id,
                          available=debit.credits_posted - debit.debits_posted - debit.debits_pending + (
                              amount if req.phase in ("single", "pending") else 0))
    invariant(not credit.no_negative or credit.debits_posted + credit.debits_pending <= credit.credits_posted,
              "a credit never makes a balance negative")


def _entries_for(transfer_id: int, req: TransferRequest, row: dict[str, Any], named: dict[str, Any],
                 accounts: dict[int, _AccountState]) -> list[dict[str, Any]]:
    amount = row["amount"]
    if req.phase == "pending":
        pending_delta, posted_delta = amount, 0
    elif req.phase == "single":
        pending_delta, posted_delta = 0, amount
    else:
        held_amount = named[req.pending_key].amount
        pending_delta = -held_amount
        posted_delta = amount if req.phase == "post" else 0
    out = []
    for side, acc_id, other_id in (("D", row["debit_account_id"], row["credit_account_id"]),
                                   ("C", row["credit_account_id"], row["debit_account_id"])):
        acc = accounts[acc_id]
        acc.entry_count += 1
        balance_after = acc.credits_posted - acc.debits_posted
        new_hash = entry_hash(
            acc.chain_head, account_id=acc_id, seq=acc.entry_count, transfer_key=req.transfer_key,
            kind=req.kind, phase=req.phase, side=side, counterparty_id=other_id, amount=amount,
            pending_delta=pending_delta, posted_delta=posted_delta, balance_after=balance_after,
            actor=req.actor, reason=req.reason, reference=req.reference,
        )
        out.append({
            "account_id": acc_id, "seq": acc.entry_count, "transfer_id": transfer_id, "side": side,
            "pending_delta": pending_delta, "posted_delta": posted_delta, "balance_after": balance_after,
            "prev_hash": acc.chain_head, "hash": new_hash,
        })
        acc.chain_head = new_hash
        acc.touched = True
    return out
