"""Migration 0014n on data: radar answers of the old shape (their own table, their own payments) become earning
claims, a notice's bounty an earning reserve holding the same hold; nothing is posted, the books verify, and the
moved data works with the new code (the rest of a bounty is paid from the old hold)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, text

from goldbean.migrate import upgrade
from ledger import earning, radar, service
from ledger.access.identity import budget_account_id, wallet_account_id
from ledger.journal.accounts import open_account_in, post_in
from ledger.journal.posting import hold, transfer, void_hold
from ledger.journal.verify import verify_books
from ledger.schema import Account, Award, Claim, Reserve
from tests.conftest import create_pg_database, drop_pg_database, make_books
from tests.earning_world import build_world

GRACE = dt.timedelta(days=3)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def old_url(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        upgrade(url, "0013")
        yield url
        return
    server = request.getfixturevalue("pg_server")
    url = create_pg_database(server, "gbmove")
    upgrade(url, "0013")
    yield url
    drop_pg_database(server, url)


def _old_radar(w, s) -> dict[str, int]:
    """Two notices in the old shape: one with a bounty of 100, 30 paid to v1, 40 awaiting approval for the leader,
    a rejected answer; one street-wide without a bounty, answered by v3 (of another community)."""
    books, u, users = w.books, w.units, w.users
    now = books.now()
    c1 = u["c1"]
    pot = open_account_in(s, f"radar:bounties:org:{c1}", "budget", name="悬赏预留", owner_ref=f"radar:org:{c1}").id
    ends = now + dt.timedelta(days=2)
    timeout = int((ends + GRACE - now).total_seconds())
    budget, wallet = budget_account_id(s, c1), wallet_account_id(s, users["v1"])
    post_in(s, books, [hold("radar:notice:1:hold:1", "award", budget, pot, 100, timeout)])
    post_in(s, books, [void_hold("radar:notice:1:release:1", "radar:notice:1:hold:1"),
                       transfer("radar:answer:1", "award", budget, wallet, 30, actor=f"user:{users['officerA']}"),
                       hold("radar:notice:1:hold:2", "award", budget, pot, 70, timeout)])
    q = lambda sql, **kw: s.execute(text(sql), kw)
    notice = ("INSERT INTO radar_notices (id, kind, status, version, title, body, officer_id, budget_org_unit_id, "
              "bounty, bounty_paid, hold_key, hold_seq, published_at, ends_at, created_at) VALUES (:id, '寻人', "
              "'open', 1, 't', 'b', :o, :budget, :bounty, :paid, :key, :seq, :now, :ends, :now)")
    q(notice, id=1, o=users["officerA"], budget=c1, bounty=100, paid=30, key="radar:notice:1:hold:2", seq=2,
      now=now, ends=ends)
    q(notice, id=2, o=users["officerA"], budget=None, bounty=0, paid=0, key=None, seq=0, now=now, ends=ends)
    for nid, unit in ((1, c1), (2, u["streetA"])):
        q("INSERT INTO radar_notice_areas (notice_id, org_unit_id) VALUES (:n, :u)", n=nid, u=unit)
    answer = ("INSERT INTO radar_answers (id, notice_id, volunteer_id, status, text, place, submitted_at, amount, "
              "decided_by_id, decided_at, decision_reason, transfer_key, created_at) VALUES (:id, :n, :v, :status, "
              ":text, :place, :now, :amount, :by, :at, :why, :key, :now)")
    officer = users["officerA"]
    q(answer, id=1, n=1, v=users["v1"], status="verified", text="在菜市场", place="金沙菜市场", now=now, amount=30,
      by=officer, at=now, why="找到", key="radar:answer:1")
    q(answer, id=2, n=1, v=users["leader"], status="pending_approval", text="在公园", place=None, now=now, amount=40,
      by=officer, at=now, why="大额", key=None)
    q(answer, id=3, n=1, v=users["v3"], status="rejected", text="不对", place=None, now=now, amount=None, by=officer,
      at=now, why="不符", key=None)
    q(answer, id=4, n=2, v=users["v3"], status="submitted", text="看到一辆车", place=None, now=now, amount=None,
      by=None, at=None, why=None, key=None)
    q("INSERT INTO radar_photos (answer_id, content_type, width, height, data, sha256, created_at) VALUES "
      "(1, 'image/png', 1, 1, :data, 'x', :now)", data=b"\x89PNG", now=now)
    return {"pot": pot}


def test_old_answers_become_claims_and_bounties_reserves(old_url, tmp_path):
    books = make_books(old_url, tmp_path / "keys")
    try:
        w = build_world(books)
        books.run(lambda s: _old_radar(w, s))
        upgrade(old_url)
        with books.session(readonly=True) as s:
            [r] = s.scalars(select(Reserve)).all()
            assert (r.amount, r.paid, r.status, r.hold_key, r.reference) == (100, 30, "open", "radar:notice:1:hold:2",
                                                                            "notice:1")
            claims = {c.volunteer_id: c for c in s.scalars(select(Claim).order_by(Claim.id))}
            assert len(claims) == 3  # keyed by volunteer: v3 answered both notices, the later one is kept
            v1 = claims[w.users["v1"]]
            assert (v1.kind, v1.category, v1.status, v1.description, v1.location, v1.reserve_id) == (
                "tip", "answer", "verified", "在菜市场", "金沙菜市场", r.id)
            assert claims[w.users["leader"]].status == "submitted"  # awaited approval: decided again
            assert claims[w.users["v3"]].org_unit_id == w.units["c2"]  # no paying community: their own
            [award] = s.scalars(select(Award)).all()
            assert (award.claim_id, award.amount, award.transfer_key, award.status) == (v1.id, 30, "radar:answer:1",
                                                                                       "posted")
            statuses = sorted(s.scalars(select(Claim.status)).all())
            assert statuses == ["rejected", "submitted", "submitted", "verified"]
            pot = s.get(Account, _ids(s, w)["pot"])
            assert pot.credits_pending == 70 and pot.balance == 0
        [record] = service.my_service_records(books, w.actor("v1"))
        assert (record.activity, record.minutes) == ("radar", 30)
        board = radar.list_answers(books, w.actor("officerA"), 1)
        assert [(a.text, a.status, a.amount, len(a.photo_ids)) for a in board][0] == ("在菜市场", "verified", 30, 1)
        assert radar.get_notice(books, w.actor("v1"), 1).bounty_left == 70
        leader_claim = board[1].id
        paid = earning.verify_claim(books, w.actor("officerA"), leader_claim, reason="核实")  # all that is left
        assert (paid.amount, paid.award_status) == (70, "posted")
        with books.session(readonly=True) as s:
            assert s.get(Account, budget_account_id(s, w.units["c1"])).debits_pending == 0
            assert s.get(Account, _ids(s, w)["pot"]).credits_pending == 0
        assert verify_books(books).ok
    finally:
        books.engine.dispose()


def _ids(s, w) -> dict[str, int]:
    return {"pot": s.scalar(select(Account.id).where(Account.code == f"radar:bounties:org:{w.units['c1']}"))}
