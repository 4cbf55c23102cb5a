"""Retention: tips' text and location are kept ``settings.retention.tip_retention_days`` (default two years)
after their case closes (the claim verified or rejected), then erased by the worker's ``retention`` job. The
claim row itself, its award and the journal stay: they carry no text of the tip. Photos and report contents
follow the same rule when a room stores them."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, update
from sqlalchemy.orm import Session

from ledger.earning.models import Claim
from ledger.infra.books import Books

CLOSED = ("verified", "rejected")


def erase_expired_tips(books: Books) -> int:
    """Erase the text and location of every tip whose case closed before the retention period; how many."""
    cutoff = books.now() - dt.timedelta(days=books.settings.retention.tip_retention_days)

    def work(s: Session) -> int:
        result = s.execute(update(Claim).where(
            Claim.kind == "tip", Claim.status.in_(CLOSED), Claim.decided_at < cutoff,
            or_(Claim.description.is_not(None), Claim.location.is_not(None))).values(description=None, location=None))
        return result.rowcount or 0

    return books.run(work)
