"""The demo district: idempotent, verifiable, and the demo users can sign in and act."""

from __future__ import annotations

from sqlalchemy import func, select

from goldbean.seed import seed_demo
from ledger import earning
from ledger.access.identity import authenticate
from ledger.journal.verify import verify_books
from ledger.schema import Award, Claim, OrgUnit, Transfer


def test_seed_demo_twice_and_use_it(books):
    summary = seed_demo(books)
    assert "officer" in summary and "goldbean" in summary

    def counts():
        with books.session(readonly=True) as s:
            return tuple(s.scalar(select(func.count()).select_from(t)) for t in (OrgUnit, Claim, Award, Transfer))

    first = counts()
    seed_demo(books)
    assert counts() == first
    with books.session(readonly=True) as s:
        streets = s.scalars(select(OrgUnit.name).where(OrgUnit.level == "street")).all()
        assert len(streets) == 12 and "阿子营街道" in streets
        pending = s.scalar(select(Award).where(Award.status == "pending_approval"))
    officer2 = authenticate(books, "officer2", "goldbean")
    assert earning.approve_award(books, officer2, pending.id).status == "posted"
    assert authenticate(books, "13900000001", "goldbean").username == "volunteer"
    assert verify_books(books).ok
