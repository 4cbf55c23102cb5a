"""Housekeeping: forget what only guarded against repeats once a repeat can no longer succeed.

Three tables grow with every redemption and are not part of the books (the journal is never pruned):

- ``spent_codes``: the ``jti`` of every wallet code redeemed. A wallet code is accepted at most
  ``WALLET_CODE_TTL_S`` after it was issued, with ``LEEWAY_S`` of clock slack on each side, so a spent
  code whose row is older than ``MIN_SPENT_CODE_RETENTION_S`` would be refused as expired anyway:
  forgetting it cannot let it be spent twice. Kept one day by default (``spent_code_retention_s``).
- ``pay_numbers``: the short number shown under each pay code; it stands for a code that expires a minute
  later, so it is forgotten with the spent codes (a pruned number is ``invalid_code``).
- ``idempotency_records``: the stored answer of every redemption and refund. A retry with the same
  ``Idempotency-Key`` within ``idempotency_retention_days`` (default 30) gets the stored answer; after
  that the key is forgotten and a request under it is judged afresh (a redemption would need a fresh
  code by then in any case). Documented in docs/redemption.md.

Rows are deleted from the oldest (smallest id) forward in short transactions of ``batch`` rows, and
pruning stops at the first row that is young enough to keep: rows are appended in time order, so
this reads only what it deletes, with no index on the time. Safe on several servers at once (a row
deleted twice is simply not there the second time).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ledger import errors
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.infra.db import utc_from_db
from ledger.infra.idempotency import IdempotencyRecord
from ledger.redemption import codes
from ledger.redemption.models import PayNumber, SpentCode

# the longest a wallet code stays acceptable after it was spent: issued up to LEEWAY_S "in the future",
# valid WALLET_CODE_TTL_S after issue, and LEEWAY_S more after its expiry
MIN_SPENT_CODE_RETENTION_S = codes.WALLET_CODE_TTL_S + 2 * codes.LEEWAY_S
BATCH = 2_000


@dataclass(frozen=True)
class PruneReport:
    spent_codes: int
    idempotency_records: int
    pay_numbers: int = 0

    def __str__(self) -> str:
        numbers = f", {self.pay_numbers} pay numbers" if self.pay_numbers else ""
        return f"pruned {self.spent_codes} spent codes, {self.idempotency_records} idempotency records{numbers}"


def _prune_oldest(books: Books, table: Any, cut: dt.datetime, batch: int) -> int:
    def one_batch(s: Session) -> tuple[int, bool]:
        rows = s.execute(select(table.c.id, table.c.created_at).order_by(table.c.id).limit(batch)).all()
        old = [r.id for r in rows if utc_from_db(r.created_at) < cut]
        if old:
            s.execute(delete(table).where(table.c.id.in_(old)))
        more = len(rows) == batch and len(old) == len(rows)
        return len(old), more

    deleted, more = 0, True
    while more:
        n, more = books.run(one_batch)
        deleted += n
    return deleted


def prune(books: Books, *, batch: int = BATCH) -> PruneReport:
    """Delete spent codes and idempotency records older than their retention (see the module doc)."""
    spent_s = books.settings.retention.spent_code_retention_s
    keys_days = books.settings.retention.idempotency_retention_days
    if spent_s < MIN_SPENT_CODE_RETENTION_S:
        raise DomainError(errors.VALIDATION_FAILED,
                          f"spent_code_retention_s must be at least {MIN_SPENT_CODE_RETENTION_S}: a wallet code "
                          "can be presented that long after it was spent")
    if keys_days < 1:
        raise DomainError(errors.VALIDATION_FAILED, "idempotency_retention_days must be at least 1")
    now = books.now()
    return PruneReport(
        spent_codes=_prune_oldest(books, SpentCode.__table__, now - dt.timedelta(seconds=spent_s), batch),
        pay_numbers=_prune_oldest(books, PayNumber.__table__, now - dt.timedelta(seconds=spent_s), batch),
        idempotency_records=_prune_oldest(books, IdempotencyRecord.__table__, now - dt.timedelta(days=keys_days),
                                          batch),
    )
