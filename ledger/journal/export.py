"""Journal exports (JSON Lines) that anyone can verify offline, and their verifier.

An export is one consistent snapshot of the books, written with constant memory (server-side cursors,
one row at a time), one JSON object per line:

1. ``{"type": "header", "format": "goldbean-journal-export", "version": 1, "counts": {...}, ...}``
2. every account (by id): its code, kind, four totals, ``entry_count`` and ``chain_head``;
3. every signed checkpoint (by id): the heads exactly as signed, digest, key id, signature;
4. every transfer (by id), each followed at once by its two entries (prev_hash, hash, balance_after);
5. ``{"type": "end", "lines": N, "sha256": ..., "key_id": ..., "signature": ...}``: the SHA-256 of
   every byte before it, signed with the instance's ledger key.

``verify_export`` checks a file without any database: every account's hash chain (recomputed with
``ledger.journal.chain``, the one home of the hash formula), every running balance, each account's
totals, count and head, every transfer's two entries and what its phase implies (by the rules of
``ledger.journal.rules``, the same posting follows and ``ledger.journal.verify`` checks), every
checkpoint's digest and signature and that the chains pass through every head it signed, debits = credits, the fund
reconciliation, the header's counts, and the end line's signature over the whole file. Signatures are
checked only against keys the caller trusts (the local instance's ledger keys, or a JWK set as
published at ``GET /api/v1/keys``), never against a key named in the file: a forged export re-signed
with another key fails. The verdict names the first line that is wrong (a changed transfer line itself,
not the entries after it).

Timestamps are not part of the entry hashes (see ``ledger.journal.chain``); in an export they are
covered by the end line's signature. Actors, reasons and references are in the entry hashes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import operator
import os
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import DateTime, func, select, text, type_coerce
from sqlalchemy.orm import Session

from ledger import errors
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.infra.db import ReadPoint, raise_as_sqlalchemy, read_point_in, utc_from_db
from ledger.infra.keys import key_id_of, public_from_jwk, verify_signature
from ledger.journal.chain import checkpoint_digest, entry_hash, genesis_hash
from ledger.journal.models import (
    ACCOUNT_KINDS,
    ENTRY_SIDES,
    TRANSFER_KINDS,
    TRANSFER_PHASES,
    Account,
    Checkpoint,
    Entry,
    Transfer,
)
from ledger.journal.rules import (
    RESOLUTION_PHASES,
    entries_problem,
    is_reversible,
    reconcile_balances,
    resolution_problem,
    reversal_problem,
)

FORMAT = "goldbean-journal-export"
VERSION = 1
STREAM_CHUNK = 2_000
PROGRESS_EVERY = 1_000
MAX_PROBLEMS = 200
MAX_LINE_BYTES = 64 * 1024 * 1024  # a checkpoint line grows with the number of accounts


def export_digest(sha256_hex: str) -> bytes:
    """What the end line's signature signs: domain-separated from checkpoint digests."""
    return hashlib.sha256(f"goldbean-export-v1|{sha256_hex}".encode()).digest()


def _ts(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return utc_from_db(value).astimezone(dt.timezone.utc).isoformat()


def _dump(obj: dict[str, Any]) -> bytes:
    """One line: compact JSON, UTF-8 as is (orjson: several times faster than ``json.dumps``, and the
    export writes one line per account, transfer and entry)."""
    return orjson.dumps(obj, option=orjson.OPT_APPEND_NEWLINE)


class _Timestamps:
    """``_ts`` remembering its last answer: a transfer's entries, and often a whole batch, share the
    transaction's timestamp, so most calls repeat the one before."""

    __slots__ = ("last", "text")

    def __init__(self) -> None:
        self.last: Any = None
        self.text: str | None = None

    def __call__(self, value: dt.datetime | None) -> str | None:
        if value is None:
            return None
        if value != self.last:  # equal instants give the same UTC text, whatever their zone
            self.last, self.text = value, _ts(value)
        return self.text


# --- export --------------------------------------------------------------------------------------------

class Progress:
    """Receives the number of lines to write, then how many were written; the CLI draws a bar."""

    def start(self, total: int) -> None:  # pragma: no cover - an interface
        pass

    def advance(self, n: int) -> None:  # pragma: no cover
        pass


@dataclass(frozen=True)
class ExportSummary:
    path: str
    lines: int
    accounts: int
    checkpoints: int
    transfers: int
    entries: int
    sha256: str
    key_id: str
    read: ReadPoint | None = None  # where the export read the books (a standby: as of its last replay)


def export_journal(books: Books, out: str | os.PathLike[str], progress: Progress | None = None) -> ExportSummary:
    """Write the whole journal to ``out`` as JSON Lines from one consistent snapshot."""
    key = books.keys.ensure("ledger")
    path = Path(out)

    def work(session: Session) -> ExportSummary:
        if session.get_bind().dialect.name == "postgresql":
            # one snapshot for every statement of the export (READ COMMITTED would give each its own)
            session.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
        point = read_point_in(session)  # in the export's snapshot: a standby's is as of its last replay
        tmp = path.with_name(f".{path.name}.part")
        with open(tmp, "wb") as fh:
            summary = _write(session, books, fh, key, progress, point)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        return ExportSummary(str(path), *summary, read=point)

    return books.read(work)


class _Writer:
    """Writes lines and keeps the running SHA-256 the end line signs, and the progress."""

    def __init__(self, fh: IO[bytes], progress: Progress | None) -> None:
        self.fh, self.progress = fh, progress
        self.digest = hashlib.sha256()
        self.lines = 0
        self.pending = 0

    def emit(self, obj: dict[str, Any]) -> None:
        self.emit_lines([_dump(obj)])

    def emit_lines(self, lines: list[bytes]) -> None:
        """Lines already dumped, hashed and written as one piece (the digest of the pieces is the digest of
        the lines one by one): per line, a write and a hash update cost more than the line's JSON."""
        data = b"".join(lines)
        self.digest.update(data)
        self.fh.write(data)
        self.lines += len(lines)
        self.pending += len(lines)
        if self.progress is not None and self.pending >= PROGRESS_EVERY:
            self.progress.advance(self.pending)
            self.pending = 0


def _write(session: Session, books: Books, fh: IO[bytes], key: Any, progress: Progress | None,
           point: ReadPoint) -> tuple:
    count = lambda model: int(session.scalar(select(func.count()).select_from(model)) or 0)
    counts = {"accounts": count(Account), "checkpoints": count(Checkpoint), "transfers": count(Transfer),
              "entries": count(Entry)}
    if progress is not None:
        progress.start(2 + sum(counts.values()))
    out = _Writer(fh, progress)
    out.emit({"type": "header", "format": FORMAT, "version": VERSION, "exported_at": _ts(books.now()),
              "database": session.get_bind().dialect.name, "counts": counts, "read": point.to_dict(),
              "note": "verify with: goldbean audit verify FILE [--key JWKS]"})
    for a in session.execute(select(Account).order_by(Account.id).execution_options(yield_per=STREAM_CHUNK)).scalars():
        out.emit({"type": "account", "id": a.id, "code": a.code, "kind": a.kind, "name": a.name,
                  "owner_ref": a.owner_ref, "status": a.status, "no_negative": a.no_negative,
                  "debits_pending": a.debits_pending, "debits_posted": a.debits_posted,
                  "credits_pending": a.credits_pending, "credits_posted": a.credits_posted,
                  "entry_count": a.entry_count, "chain_head": a.chain_head, "created_at": _ts(a.created_at)})
        session.expunge(a)
    for c in session.execute(select(Checkpoint).order_by(Checkpoint.id)
                             .execution_options(yield_per=50)).scalars():
        out.emit({"type": "checkpoint", "id": c.id, "heads": c.heads, "accounts_count": c.accounts_count,
                  "entries_count": c.entries_count, "digest": c.digest, "key_id": c.key_id,
                  "signature": c.signature, "created_at": _ts(c.created_at)})
        session.expunge(c)
    n_transfers, n_entries = _write_transfers(session, out)
    sha = out.digest.hexdigest()
    fh.write(_dump({"type": "end", "lines": out.lines, "sha256": sha, "key_id": key.kid,
                    "signature": key.sign(export_digest(sha)).hex()}))
    if progress is not None:
        progress.advance(out.pending + 1)
    return out.lines + 1, counts["accounts"], counts["checkpoints"], n_transfers, n_entries, sha, key.kid


def _write_transfers(session: Session, out: _Writer) -> tuple[int, int]:
    """Every transfer, each followed by its entries (by id), from two streams read side by side: the transfers
    by id and the entries by transfer and id. (One joined stream repeated each transfer's fifteen columns on
    both of its entries' rows: the driver's parsing of those values was most of the export's time.)"""
    t, e = Transfer.__table__.c, Entry.__table__.c
    # the instants as the driver gives them (``_ts`` makes them UTC text): not through UTCDateTime's result
    # processing, a Python call per value and about a fifth of the export's CPU
    raw = lambda column: type_coerce(column, DateTime(timezone=True)).label(column.name)
    streamed = {"yield_per": STREAM_CHUNK, "stream_results": True}
    transfers = (select(t.id, t.transfer_key, t.kind, t.phase, t.debit_account_id, t.credit_account_id, t.amount,
                        t.pending_id, raw(t.expires_at), t.reverses_id, t.batch_key, t.actor, t.reason, t.reference,
                        raw(t.created_at))
                 .order_by(t.id).execution_options(**streamed))
    entries = (select(e.transfer_id, e.id, e.account_id, e.seq, e.side, e.pending_delta, e.posted_delta,
                      e.balance_after, e.prev_hash, e.hash, raw(e.created_at))
               .order_by(e.transfer_id, e.id).execution_options(**streamed))
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        entry_rows = itertools.chain.from_iterable(session.execute(entries).partitions())
        return _merge(session.execute(transfers).partitions(), entry_rows, out)
    # PostgreSQL: the same two statements on the driver's own server-side cursors, in the export's transaction
    # and snapshot; the rows as the driver makes them (SQLAlchemy's rows were a sixth of the export's CPU, and
    # these statements need none of its processing: the instants are taken raw above as well)
    driver = conn.connection.driver_connection
    try:
        with driver.cursor(name="goldbean_export_transfers") as t_cur, \
                driver.cursor(name="goldbean_export_entries") as e_cur:
            t_cur.execute(str(transfers.compile(dialect=conn.dialect)))
            e_cur.execute(str(entries.compile(dialect=conn.dialect)))
            chunks = lambda cur: iter(lambda: cur.fetchmany(STREAM_CHUNK), [])
            return _merge(chunks(t_cur), itertools.chain.from_iterable(chunks(e_cur)), out)
    except Exception as exc:
        raise_as_sqlalchemy(conn, exc)  # a lost connection or a cancelled statement, as SQLAlchemy raises them
        raise


def _merge(transfer_chunks: Iterable[list[Any]], entry_rows: Iterator[Any], out: _Writer) -> tuple[int, int]:
    """Write each transfer and then its entries: both streams are in transfer order. An entry of no transfer
    (the foreign key allows none) is passed over, as a join from the transfers would."""
    dump, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE  # as ``_dump``, without a call of ours per line
    n_transfers = n_entries = 0
    ts = _Timestamps()
    entry = next(entry_rows, None)
    for rows in transfer_chunks:  # STREAM_CHUNK rows at a time, as the server cursor sends them
        lines: list[bytes] = []
        line = lines.append
        for (tid, transfer_key, kind, phase, debit_id, credit_id, amount, pending_id, expires_at, reverses_id,
             batch_key, actor, reason, reference, created_at) in rows:
            n_transfers += 1
            line(dump({"type": "transfer", "id": tid, "transfer_key": transfer_key, "kind": kind, "phase": phase,
                       "debit_account_id": debit_id, "credit_account_id": credit_id, "amount": amount,
                       "pending_id": pending_id, "expires_at": _ts(expires_at), "reverses_id": reverses_id,
                       "batch_key": batch_key, "actor": actor, "reason": reason, "reference": reference,
                       "created_at": ts(created_at)}, option=newline))
            while entry is not None and entry[0] <= tid:
                if entry[0] == tid:
                    n_entries += 1
                    line(dump({"type": "entry", "id": entry[1], "transfer_id": tid, "account_id": entry[2],
                               "seq": entry[3], "side": entry[4], "pending_delta": entry[5],
                               "posted_delta": entry[6], "balance_after": entry[7], "prev_hash": entry[8],
                               "hash": entry[9], "created_at": ts(entry[10])}, option=newline))
                entry = next(entry_rows, None)
        out.emit_lines(lines)
    return n_transfers, n_entries


# --- trusted keys ------------------------------------------------------------------------------------------

def keys_from_jwks(data: bytes | str) -> dict[str, Ed25519PublicKey]:
    """The ledger keys of a JWK set (``GET /api/v1/keys``: entries with ``"purpose": "ledger"``; a set
    without purposes is taken as ledger keys). Key ids are recomputed from the keys themselves."""
    try:
        doc = json.loads(data)
        entries = doc["keys"] if isinstance(doc, dict) else doc
        out = {}
        for jwk in entries:
            if jwk.get("purpose", "ledger") != "ledger":
                continue
            if jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
                continue
            public = public_from_jwk(jwk)
            out[key_id_of(public)] = public
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DomainError(errors.NO_TRUSTED_KEY, f"not a JWK set of Ed25519 keys: {exc}") from None
    if not out:
        raise DomainError(errors.NO_TRUSTED_KEY, "the key file holds no ledger key")
    return out


# --- verify ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LineProblem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class ExportReport:
    lines: int = 0
    accounts: int = 0
    checkpoints: int = 0
    transfers: int = 0
    entries: int = 0
    debits_posted: int = 0
    credits_posted: int = 0
    donated: int = 0
    reconciliation_difference: int = 0
    signed_by: str | None = None
    problems: list[LineProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> LineProblem | None:
        return min(self.problems, key=lambda p: p.line) if self.problems else None

    def verdict(self) -> str:
        counts = (f"{self.lines} lines: {self.accounts} accounts, {self.checkpoints} checkpoints, "
                  f"{self.transfers} transfers, {self.entries} entries")
        if self.ok:
            return (f"OK: {counts}; every chain, balance, checkpoint and the export signature (key "
                    f"{self.signed_by}) verified; debits = credits = {self.debits_posted}; donations "
                    f"{self.donated} reconcile (difference 0)")
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        return f"FAILED at {self.first}{more}; read {counts}"


class _Acc:
    __slots__ = ("id", "code", "kind", "no_negative", "declared", "entry_count", "chain_head", "line", "seq",
                 "head", "dpe", "dpo", "cpe", "cpo", "broken")

    def __init__(self, obj: dict[str, Any], line: int) -> None:
        self.id = obj["id"]
        self.code = obj["code"]
        self.kind = obj["kind"]
        self.no_negative = obj["no_negative"]
        self.declared = (obj["debits_pending"], obj["debits_posted"], obj["credits_pending"], obj["credits_posted"])
        self.entry_count = obj["entry_count"]
        self.chain_head = obj["chain_head"]
        self.line = line
        self.seq = 0
        self.head = genesis_hash(self.id, self.code, self.kind)
        self.dpe = self.dpo = self.cpe = self.cpo = 0
        self.broken = False


class _Stop(Exception):
    pass


_FIELDS: dict[str, dict[str, Any]] = {
    "account": {"id": int, "code": str, "kind": str, "no_negative": bool, "debits_pending": int,
                "debits_posted": int, "credits_pending": int, "credits_posted": int, "entry_count": int,
                "chain_head": str},
    "checkpoint": {"id": int, "heads": str, "accounts_count": int, "entries_count": int, "digest": str,
                   "key_id": str, "signature": str},
    "transfer": {"id": int, "transfer_key": str, "kind": str, "phase": str, "debit_account_id": int,
                 "credit_account_id": int, "amount": int, "pending_id": (int, type(None)),
                 "reverses_id": (int, type(None))},
    "entry": {"id": int, "transfer_id": int, "account_id": int, "seq": int, "side": str, "pending_delta": int,
              "posted_delta": int, "balance_after": int, "prev_hash": str, "hash": str},
    "end": {"lines": int, "sha256": str, "key_id": str, "signature": str},
}

_ENTRY_FIELDS = operator.itemgetter("id", "transfer_id", "account_id", "seq", "side", "pending_delta", "posted_delta",
                                    "balance_after", "prev_hash", "hash")
SECTION = {"header": 0, "account": 1, "checkpoint": 2, "transfer": 3, "entry": 3, "end": 4}
# per kind: the fields of one type and those types, for one comparison in C per line (what JSON gives is exactly
# int, str, bool or None: a type compared exactly is what the careful loop of ``_typed`` accepts, or stricter)
_EXACT_NAMES = {kind: tuple(n for n, typ in fields.items() if isinstance(typ, type)) for kind, fields in _FIELDS.items()}
_EXACT_TYPES = {kind: tuple(fields[n] for n in _EXACT_NAMES[kind]) for kind, fields in _FIELDS.items()}
_OPTIONAL_INT_NAMES = {kind: tuple(n for n, typ in fields.items() if not isinstance(typ, type))
                       for kind, fields in _FIELDS.items()}
assert all(typ == (int, type(None)) for fields in _FIELDS.values() for typ in fields.values()
           if not isinstance(typ, type)), "a field of two types is an optional whole number"


class _Verifier:
    def __init__(self, trusted: dict[str, Ed25519PublicKey]) -> None:
        self.trusted = trusted
        self.report = ExportReport()
        self.accounts: dict[int, _Acc] = {}
        self.pins: dict[int, dict[int, tuple[str, int]]] = defaultdict(dict)  # account -> seq -> (head, line)
        self.header: dict[str, Any] | None = None
        self.section = -1
        self.last_id = {"account": 0, "checkpoint": 0, "transfer": 0}
        self.transfer: dict[str, Any] | None = None  # the transfer whose entries come next
        self.transfer_line = 0
        self.transfer_entries: list[tuple[int, dict[str, Any]]] = []
        self.transfer_mismatches: list[int] = []  # lines of its entries that disagree with the transfer
        self.open_holds: dict[int, tuple[int, int, int]] = {}  # hold id -> (amount, debit, credit)
        self.resolved_holds = 0
        self.reversible = array("q")  # transfer id -> amount of a reversible transfer, else 0
        self.reversed: dict[int, int] = defaultdict(int)
        self.ended = False
        self._on = {kind: getattr(self, f"on_{kind}") for kind in SECTION}

    # -- helpers --
    def problem(self, line: int, message: str) -> None:
        self.report.problems.append(LineProblem(line, message))
        if len(self.report.problems) >= MAX_PROBLEMS:
            raise _Stop

    def _typed(self, kind: str, obj: dict[str, Any], line: int) -> bool:
        get = obj.get
        if tuple(map(type, map(get, _EXACT_NAMES[kind]))) == _EXACT_TYPES[kind]:
            for name in _OPTIONAL_INT_NAMES[kind]:
                value = get(name)
                if value is not None and type(value) is not int:
                    break
            else:
                return True  # every line of a sound file: the loop below says which field is wrong
        for name, typ in _FIELDS[kind].items():
            value = obj.get(name)
            if typ is int and (type(value) is not int):  # bool is not an id
                self.problem(line, f"{kind} field {name!r} must be a whole number")
                return False
            if typ is not int and not isinstance(value, typ):
                self.problem(line, f"{kind} field {name!r} is missing or of the wrong type")
                return False
        return True

    # -- lines --
    def line(self, number: int, obj: Any) -> None:
        if self.ended:
            self.problem(number, "a line after the end line")
            return
        kind = obj.get("type") if isinstance(obj, dict) else None
        if kind not in SECTION:
            self.problem(number, f"unknown line type {kind!r}")
            return
        if number == 1 and kind != "header":
            self.problem(number, "the first line must be the header")
        section = SECTION[kind]
        if section < self.section:
            self.problem(number, f"a {kind} line out of place (after the {self._section_name()} section)")
            return
        if kind != "entry" and self.transfer is not None:
            self.finish_transfer()
        self.section = section
        self._on[kind](number, obj)

    def _section_name(self) -> str:
        return {0: "header", 1: "account", 2: "checkpoint", 3: "transfer", 4: "end"}.get(self.section, "?")

    def on_header(self, n: int, obj: dict[str, Any]) -> None:
        if n != 1 or self.header is not None:
            self.problem(n, "a second header")
            return
        if obj.get("format") != FORMAT or obj.get("version") != VERSION:
            self.problem(n, f"not a {FORMAT} version {VERSION} file")
            raise _Stop
        counts = obj.get("counts")
        if not isinstance(counts, dict):
            self.problem(n, "the header has no counts")
            counts = {}
        self.header = counts

    def _next_id(self, kind: str, n: int, ident: int) -> bool:
        if ident <= self.last_id[kind]:
            self.problem(n, f"{kind} {ident} comes after {kind} {self.last_id[kind]}: lines were reordered or "
                            f"duplicated")
            return False
        self.last_id[kind] = ident
        return True

    def on_account(self, n: int, obj: dict[str, Any]) -> None:
        if not self._typed("account", obj, n) or not self._next_id("account", n, obj["id"]):
            return
        if obj["kind"] not in ACCOUNT_KINDS:
            self.problem(n, f"no account kind {obj['kind']!r}")
        self.report.accounts += 1
        self.accounts[obj["id"]] = _Acc(obj, n)

    def on_checkpoint(self, n: int, obj: dict[str, Any]) -> None:
        if not self._typed("checkpoint", obj, n) or not self._next_id("checkpoint", n, obj["id"]):
            return
        self.report.checkpoints += 1
        label = f"checkpoint {obj['id']}"
        if checkpoint_digest(obj["heads"]) != obj["digest"]:
            self.problem(n, f"{label}: the digest does not match its heads: the heads were changed")
            return
        public = self.trusted.get(obj["key_id"])
        if public is None:
            self.problem(n, f"{label}: signed by key {obj['key_id']}, which you do not trust")
            return
        try:
            signature = bytes.fromhex(obj["signature"])
        except ValueError:
            signature = b""
        if not verify_signature(public, signature, bytes.fromhex(obj["digest"])):
            self.problem(n, f"{label}: the signature is not valid for key {obj['key_id']}")
            return
        try:
            heads = json.loads(obj["heads"])
            entries = 0
            for account_id, count, head in heads:
                entries += count
                acc = self.accounts.get(account_id)
                if acc is None:
                    self.problem(n, f"{label} signed account {account_id}, which is not in the export")
                    continue
                if count == 0:
                    if head != acc.head:  # the genesis hash
                        self.problem(n, f"{label}: account {account_id} has a different genesis")
                    continue
                earlier = self.pins[account_id].get(count)
                if earlier is not None and earlier[0] != head:
                    self.problem(n, f"{label} and the checkpoint on line {earlier[1]} disagree on account "
                                    f"{account_id}'s entry {count}")
                self.pins[account_id][count] = (head, n)
        except (ValueError, TypeError) as exc:
            self.problem(n, f"{label}: heads are malformed ({exc})")
            return
        if len(heads) != obj["accounts_count"] or entries != obj["entries_count"]:
            self.problem(n, f"{label}: its counts do not match its heads")

    def on_transfer(self, n: int, obj: dict[str, Any]) -> None:
        if not self._typed("transfer", obj, n) or not self._next_id("transfer", n, obj["id"]):
            self.transfer = None
            return
        self.report.transfers += 1
        t = obj
        if t["kind"] not in TRANSFER_KINDS or t["phase"] not in TRANSFER_PHASES:
            self.problem(n, f"unknown kind {t['kind']!r} or phase {t['phase']!r}")
        if t["amount"] <= 0 or t["debit_account_id"] == t["credit_account_id"]:
            self.problem(n, "the amount must be positive and the two accounts distinct")
        for side in ("debit_account_id", "credit_account_id"):
            if t[side] not in self.accounts:
                self.problem(n, f"names account {t[side]}, which is not in the export")
                self.transfer = None
                return
        self.transfer = t
        self.transfer_line = n
        self.transfer_entries = []
        self.transfer_mismatches = []

    def on_entry(self, n: int, obj: dict[str, Any]) -> None:
        if not self._typed("entry", obj, n):
            return
        self.report.entries += 1
        # every field at once (one call in C: this runs for every entry of the books)
        ident, transfer_id, account_id, seq, side, pending_delta, posted_delta, balance_after, prev_hash, digest = (
            _ENTRY_FIELDS(obj))
        t = self.transfer
        if t is None or transfer_id != t["id"]:
            self.problem(n, f"entry {ident} of transfer {transfer_id} is not under its transfer")
            if account_id in self.accounts:  # its chain cannot be followed past this entry
                self.accounts[account_id].broken = True
            return
        self.transfer_entries.append((n, obj))
        acc = self.accounts.get(account_id)
        if acc is None:
            self.problem(n, f"entry of account {account_id}, which is not in the export")
            return
        if acc.broken:
            return
        if side not in ENTRY_SIDES:
            return self._chain_broken(acc, n, seq, f"side {side!r}")
        if seq != acc.seq + 1:
            return self._chain_broken(acc, n, seq, f"expected entry number {acc.seq + 1}: an entry is missing, "
                                                   "inserted or moved")
        if prev_hash != acc.head:
            return self._chain_broken(acc, n, seq, "prev_hash does not link to the previous entry: the chain was "
                                                   "altered here")
        debit = side == "D"
        if account_id != (t["debit_account_id"] if debit else t["credit_account_id"]):
            self.transfer_mismatches.append(n)
            return self._chain_broken(acc, n, seq, f"a {'debit' if debit else 'credit'} entry on an account the "
                                                   f"transfer does not {'debit' if debit else 'credit'}")
        recomputed = entry_hash(
            prev_hash, account_id=acc.id, seq=seq, transfer_key=t["transfer_key"], kind=t["kind"],
            phase=t["phase"], side=side, counterparty_id=t["credit_account_id"] if debit else t["debit_account_id"],
            amount=t["amount"], pending_delta=pending_delta, posted_delta=posted_delta, balance_after=balance_after,
            actor=t["actor"], reason=t["reason"], reference=t["reference"])
        if recomputed != digest:
            self.transfer_mismatches.append(n)
            return self._chain_broken(acc, n, seq, "the hash does not match the entry and its transfer: one of "
                                                   "them was changed")
        if debit:
            acc.dpe += pending_delta
            acc.dpo += posted_delta
        else:
            acc.cpe += pending_delta
            acc.cpo += posted_delta
        if balance_after != acc.cpo - acc.dpo:
            return self._chain_broken(acc, n, seq, f"balance_after {balance_after} but the entries before it add "
                                                   f"up to {acc.cpo - acc.dpo}")
        pins = self.pins.get(acc.id)
        pin = pins.get(seq) if pins else None
        if pin is not None and pin[0] != digest:
            return self._chain_broken(acc, n, seq, f"the checkpoint on line {pin[1]} signed a different hash at "
                                                   "this position")
        acc.seq = seq
        acc.head = digest

    def _chain_broken(self, acc: _Acc, n: int, seq: int, message: str) -> None:
        """An entry that does not continue its account's chain: a problem, and the chain is not followed further."""
        acc.broken = True
        self.problem(n, f"account {acc.id} ({acc.code}) entry {seq}: {message}")

    def finish_transfer(self) -> None:
        """The transfer's own checks, once its entries are read: the rules of ``ledger.journal.rules``."""
        t, n, rows = self.transfer, self.transfer_line, self.transfer_entries
        self.transfer = None
        assert t is not None
        key, phase, amount = t["transfer_key"], t["phase"], t["amount"]
        debit, credit = t["debit_account_id"], t["credit_account_id"]
        if len(self.transfer_mismatches) == 2:
            # both entries, on two accounts, disagree with the transfer: the transfer line was changed
            self.problem(n, f"transfer {key}: the hash does not match either of its entries: the transfer was "
                            "changed")
        held_amount = None
        if phase in RESOLUTION_PHASES:
            hold = self.open_holds.pop(t["pending_id"], None) if t["pending_id"] is not None else None
            wrong = resolution_problem(phase, amount, debit, credit, hold)
            if wrong is not None:
                self.problem(n, f"transfer {key} {wrong}" + (f" ({t['pending_id']})" if hold is None else ""))
            if hold is None:
                return
            held_amount = hold[0]
        found = entries_problem(phase, amount, debit, credit, held_amount,
                                [(r["side"], r["account_id"], r["pending_delta"], r["posted_delta"]) for _, r in rows])
        if found is not None:
            index, message = found
            self.problem(n if index is None else rows[index][0], f"transfer {key} {message}")
            return
        if phase == "pending":
            self.open_holds[t["id"]] = (amount, debit, credit)
        if t["reverses_id"] is not None:
            original = t["reverses_id"]
            available = self.reversible[original] if original < len(self.reversible) else 0
            self.reversed[original] += amount
            wrong = reversal_problem(phase, available > 0, available, self.reversed[original])
            if wrong is not None:
                self.problem(n, f"transfer {key} {wrong} (transfer {original})")
        elif is_reversible(phase, t["kind"]):
            ident = t["id"]
            if ident >= len(self.reversible):
                self.reversible.extend([0] * (ident + 1 - len(self.reversible) + 1024))
            self.reversible[ident] = amount

    def on_end(self, n: int, obj: dict[str, Any], sha_before: str = "") -> None:
        self.ended = True
        if not self._typed("end", obj, n):
            return
        if obj["lines"] != n - 1:
            self.problem(n, f"the end line counts {obj['lines']} lines before it, the file has {n - 1}")
        if obj["sha256"] != sha_before:
            self.problem(n, "the file's contents do not match the signed digest: a line was changed, added or "
                            "removed after the export")
            return
        public = self.trusted.get(obj["key_id"])
        if public is None:
            self.problem(n, f"the export is signed by key {obj['key_id']}, which you do not trust")
            return
        try:
            signature = bytes.fromhex(obj["signature"])
        except ValueError:
            signature = b""
        if not verify_signature(public, signature, export_digest(obj["sha256"])):
            self.problem(n, f"the export's signature is not valid for key {obj['key_id']}")
            return
        self.report.signed_by = obj["key_id"]

    def finish(self, last_line: int) -> None:
        if self.transfer is not None:
            self.finish_transfer()
        if not self.ended:
            self.problem(last_line + 1, "the export is cut short: there is no end line")
        by_kind: dict[str, int] = defaultdict(int)
        dpo = cpo = dpe = cpe = 0
        for acc in self.accounts.values():
            dpo, cpo, dpe, cpe = dpo + acc.dpo, cpo + acc.cpo, dpe + acc.dpe, cpe + acc.cpe
            by_kind[acc.kind] += acc.cpo - acc.dpo
            if acc.broken:
                continue
            recomputed = (acc.dpe, acc.dpo, acc.cpe, acc.cpo)
            if recomputed != acc.declared:
                self.problem(acc.line, f"account {acc.id} ({acc.code}): totals {acc.declared} but its entries add "
                                       f"up to {recomputed}")
            elif acc.seq != acc.entry_count or acc.head != acc.chain_head:
                self.problem(acc.line, f"account {acc.id} ({acc.code}): the chain ends at entry {acc.seq} with "
                                       f"another head than the account's {acc.entry_count} entries")
            elif acc.no_negative and acc.dpo + acc.dpe > acc.cpo:
                self.problem(acc.line, f"account {acc.id} ({acc.code}) is below zero but may not be")
            pins = self.pins.get(acc.id)
            if pins and max(pins) > acc.seq:
                head, line = pins[max(pins)]
                self.problem(line, f"a checkpoint signed {max(pins)} entries of account {acc.id} but the export "
                                   f"has {acc.seq}")
        self.report.debits_posted, self.report.credits_posted = dpo, cpo
        if dpo != cpo or dpe != cpe:
            self.problem(last_line, f"debits {dpo} (pending {dpe}) != credits {cpo} (pending {cpe})")
        donated, _, _, diff = reconcile_balances(by_kind)
        self.report.donated, self.report.reconciliation_difference = donated, diff
        if diff != 0:
            self.problem(last_line, f"the fund does not reconcile: donations {donated}, difference {diff}")
        if self.header is not None:
            r = self.report
            actual = {"accounts": r.accounts, "checkpoints": r.checkpoints, "transfers": r.transfers,
                      "entries": r.entries}
            for name, value in actual.items():
                if self.header.get(name) != value:
                    self.problem(1, f"the header counts {self.header.get(name)} {name}, the file has {value}")


def iter_lines(fh: IO[bytes]) -> Iterator[bytes]:
    while True:
        raw = fh.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        yield raw


def verify_export(source: str | os.PathLike[str] | IO[bytes], trusted: dict[str, Ed25519PublicKey],
                  progress: Callable[[int], None] | None = None) -> ExportReport:
    """Check an export offline against ``trusted`` ledger keys (kid -> public key). Constant memory in
    the number of transfers and entries; the accounts and the heads checkpoints pin are kept."""
    if not trusted:
        raise DomainError(errors.NO_TRUSTED_KEY)
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as fh:
            return verify_export(fh, trusted, progress)
    v = _Verifier(trusted)
    digest = hashlib.sha256()
    number = 0
    readline = source.readline  # (``iter_lines``, inlined: a generator's resume per line is a tenth of the loop)
    try:
        while raw := readline(MAX_LINE_BYTES + 1):
            number += 1
            if progress is not None:
                progress(len(raw))
            if len(raw) > MAX_LINE_BYTES or not raw.endswith(b"\n"):
                v.problem(number, "the line is cut short or too long")
                digest.update(raw)
                continue
            try:
                obj = orjson.loads(raw)  # stricter than json.loads (no NaN, no lone surrogates) and faster
            except ValueError:
                v.problem(number, "not a JSON object")
                digest.update(raw)
                continue
            if isinstance(obj, dict) and obj.get("type") == "end" and not v.ended:
                if v.transfer is not None:
                    v.finish_transfer()
                v.section = SECTION["end"]
                v.on_end(number, obj, digest.hexdigest())
            else:
                try:
                    v.line(number, obj)
                except (KeyError, TypeError, ValueError, AttributeError) as exc:
                    v.problem(number, f"a malformed line ({type(exc).__name__}: {exc})")
            digest.update(raw)
        if number == 0:
            raise DomainError(errors.EXPORT_UNREADABLE, "the file is empty")
        v.finish(number)
    except _Stop:
        pass
    v.report.lines = number
    v.report.problems.sort(key=lambda p: p.line)
    return v.report


@dataclass
class CompareReport:
    accounts: int = 0  # accounts of the older export found again
    pinned: int = 0  # chain positions of the older export checked in the newer
    problems: list[LineProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def verdict(self) -> str:
        if self.ok:
            return (f"OK: all {self.accounts} accounts of the older export continue unchanged in the newer one "
                    f"({self.pinned} chain heads found at their positions)")
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        return f"FAILED at line {self.problems[0].line} of the newer export: {self.problems[0].message}{more}"


def compare_exports(older: str | os.PathLike[str], newer: str | os.PathLike[str]) -> CompareReport:
    """Check that the newer export continues the older one: every account of the older export is in the
    newer one, and each chain passes, at the older export's entry count, through the older head.

    Verify both files first (``verify_export``); this only proves that history up to the older export
    was not rewritten afterwards, even by someone holding the signing key."""
    try:
        return _compare(older, newer)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DomainError(errors.EXPORT_UNREADABLE, f"cannot read the exports ({type(exc).__name__}: {exc}); "
                                                    "verify each first") from None


def _compare(older: str | os.PathLike[str], newer: str | os.PathLike[str]) -> CompareReport:
    heads: dict[int, tuple[int, str, str]] = {}  # account id -> (entry_count, chain_head, code)
    with open(older, "rb") as fh:
        for raw in iter_lines(fh):
            obj = json.loads(raw)
            if obj.get("type") == "account":
                heads[obj["id"]] = (obj["entry_count"], obj["chain_head"], obj["code"])
            elif obj.get("type") in ("checkpoint", "transfer", "entry", "end"):
                break
    report = CompareReport()
    seen: set[int] = set()
    with open(newer, "rb") as fh:
        for number, raw in enumerate(iter_lines(fh), start=1):
            obj = json.loads(raw)
            kind = obj.get("type")
            if kind == "account" and obj["id"] in heads:
                count, head, code = heads[obj["id"]]
                seen.add(obj["id"])
                if obj["code"] != code:
                    report.problems.append(LineProblem(number, f"account {obj['id']} was {code}, now {obj['code']}"))
                elif obj["entry_count"] < count:
                    report.problems.append(LineProblem(number, f"account {obj['id']} ({code}) had {count} entries, "
                                                               f"now {obj['entry_count']}"))
                elif obj["entry_count"] == count and obj["chain_head"] != head:
                    report.problems.append(LineProblem(number, f"account {obj['id']} ({code}): its chain was "
                                                               "rewritten"))
            elif kind == "entry":
                old = heads.get(obj["account_id"])
                if old is not None and obj["seq"] == old[0]:
                    report.pinned += 1
                    if obj["hash"] != old[1]:
                        report.problems.append(LineProblem(number, f"account {obj['account_id']} ({old[2]}) entry "
                                                                   f"{obj['seq']}: the older export ended its chain "
                                                                   "with another hash: history was rewritten"))
    for account_id in sorted(set(heads) - seen):
        report.problems.append(LineProblem(0, f"account {account_id} ({heads[account_id][2]}) is gone"))
    report.accounts = len(seen)
    report.problems.sort(key=lambda p: p.line)
    return report


def trusted_keys(books: Books | None = None, key_file: str | os.PathLike[str] | None = None) -> dict[str, Ed25519PublicKey]:
    """The keys to trust: a JWK set file if given, else the local instance's ledger keys."""
    if key_file is not None:
        return keys_from_jwks(Path(key_file).read_bytes())
    if books is None:
        raise DomainError(errors.NO_TRUSTED_KEY)
    keys = books.keys.public_keys("ledger")
    if not keys:
        raise DomainError(errors.NO_TRUSTED_KEY, "this instance has no ledger key; pass --key FILE")
    return keys


def lines_of(path: str | os.PathLike[str]) -> Iterable[bytes]:  # for tests and tools
    with open(path, "rb") as fh:
        yield from iter_lines(fh)
