"""Retention: a closed tip's text and location are erased by the worker's job once the retention period since
the case closed has passed, not a day before; open tips are kept whatever their age."""

from __future__ import annotations

import datetime as dt

from goldbean.worker import retention_job
from ledger import earning, privacy
from ledger.schema import Claim
from tests.earning_world import build_world, tip


def _text(books, claim_id: int):
    with books.session(readonly=True) as s:
        c = s.get(Claim, claim_id)
        return c.description, c.location


def test_closed_tips_lose_their_text_after_the_retention_period(books, clock) -> None:
    w = build_world(books)
    closed, still_open = tip(w, "v1"), tip(w, "v2")
    earning.reject_claim(books, w.actor("officerA2"), closed.id, reason="duplicate")
    days = books.settings.retention.tip_retention_days
    assert days == 730
    clock.now = clock.now + dt.timedelta(days=days - 1)
    assert privacy.erase_expired_tips(books) == 0 and _text(books, closed.id)[0]
    clock.now = clock.now + dt.timedelta(days=2)
    assert retention_job(books).startswith("1 ")
    assert _text(books, closed.id) == (None, None)
    assert _text(books, still_open.id)[0]  # its case is not closed
    assert privacy.erase_expired_tips(books) == 0
