"""Earning: rules, scopes, caps, budgets, second approval, reversal, the fund, leaderboards."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from ledger import earning
from ledger.access.identity import budget_account_id, wallet_account_id
from ledger.errors import DomainError
from ledger.journal.accounts import get_account, post
from ledger.journal.posting import transfer
from ledger.journal.verify import verify_books
from ledger.schema import Award, Claim, Transfer
from tests.earning_world import build_world, patrol, tip


@pytest.fixture
def w(books):
    return build_world(books)


def wallet(w, name: str) -> int:
    with w.books.session(readonly=True) as s:
        return get_account(w.books, wallet_account_id(s, w.users[name])).balance


def budget(w, unit: str) -> tuple[int, int]:
    with w.books.session(readonly=True) as s:
        acc = get_account(w.books, budget_account_id(s, w.units[unit]))
    return acc.balance, acc.available


def snapshot(books) -> tuple:
    with books.session(readonly=True) as s:
        return (s.scalar(select(func.count()).select_from(Transfer)),
                s.scalar(select(func.count()).select_from(Award)),
                tuple(s.execute(select(Claim.id, Claim.status).order_by(Claim.id)).all()))


def refused(books, code: str, fn, *args, **kwargs) -> DomainError:
    before = snapshot(books)
    with pytest.raises(DomainError) as info:
        fn(*args, **kwargs)
    assert info.value.code == code, info.value
    assert snapshot(books) == before
    return info.value


def test_patrol_awards_by_the_hour_up_to_the_cap(w):
    c = patrol(w, "v1", "c1", 2.5)
    assert c.status == "submitted" and c.submitted_by_id == w.users["v1"]
    v = earning.verify_claim(w.books, w.actor("officerA"), c.id, reason="on the roster")
    assert v.status == "verified" and v.amount == 25 and v.award_status == "posted"
    assert wallet(w, "v1") == 25 and budget(w, "c1")[0] == 10_000 - 25
    long = patrol(w, "v1", "c1", 6, ago_h=8)
    assert earning.verify_claim(w.books, w.actor("officerA"), long.id, reason="ok").amount == 40
    with w.books.session(readonly=True) as s:
        t = s.scalar(select(Transfer).where(Transfer.reference == f"claim:{c.id}"))
        assert t.kind == "award" and t.reason == "patrol" and t.actor == f"user:{w.users['officerA']}"
    assert verify_books(w.books).ok


def test_tip_details_only_for_officers_in_scope_and_their_author(w):
    c = tip(w, "v1")
    details = {"description": "saw a bike lock cut", "location": "building 1", "police_case_ref": "PL-1"}
    assert c.details == details  # the volunteer sees what they wrote
    assert earning.get_claim(w.books, w.actor("v1"), c.id).details == details
    seen = earning.get_claim(w.books, w.actor("officerA"), c.id)
    assert seen.details == details
    assert earning.get_claim(w.books, w.actor("auditor"), c.id).details is None
    for outsider in ("officerB", "v2", "cashier", "fund"):
        refused(w.books, "claim_not_found", earning.get_claim, w.books, w.actor(outsider), c.id)
    assert [x.id for x in earning.list_claims(w.books, w.actor("officerB"))] == []
    assert [x.id for x in earning.list_claims(w.books, w.actor("officerA"))] == [c.id]
    v = earning.verify_claim(w.books, w.actor("officerA"), c.id, reason="passed to police", tier="medium")
    assert v.amount == 30 and v.tier == "medium"
    with w.books.session(readonly=True) as s:
        t = s.scalar(select(Transfer).where(Transfer.reference == f"claim:{c.id}"))
        assert t.reason == "tip:theft" and "bike" not in t.reason


def test_leader_submits_for_a_volunteer_in_their_unit_only(w):
    c = patrol(w, "v1", "c1", 1, by="leader")
    assert c.volunteer_id == w.users["v1"] and c.submitted_by_id == w.users["leader"]
    refused(w.books, "out_of_scope", patrol, w, "v2", "c3", 1, by="leader")
    refused(w.books, "permission_denied", patrol, w, "v1", "c1", 1, by="v2")
    refused(w.books, "permission_denied", patrol, w, "officerA", "c1", 1)  # not a volunteer


def test_out_of_scope_and_self_dealing_refused(w):
    c = patrol(w, "v1", "c1", 2)
    refused(w.books, "out_of_scope", earning.verify_claim, w.books, w.actor("officerB"), c.id, reason="x")
    refused(w.books, "permission_denied", earning.verify_claim, w.books, w.actor("fund"), c.id, reason="x")
    refused(w.books, "out_of_scope", earning.reject_claim, w.books, w.actor("officerB"), c.id, reason="x")
    refused(w.books, "out_of_scope", earning.award_directly, w.books, w.actor("officerB"),
            volunteer_id=w.users["v1"], org_unit_id=w.units["c1"], amount=5, reference="r")
    refused(w.books, "claim_not_found", earning.verify_claim, w.books, w.actor("officerA"), 999_999, reason="x")
    r = earning.reject_claim(w.books, w.actor("officerA"), c.id, reason="not on the roster")
    assert r.status == "rejected" and r.decision_reason == "not on the roster"
    refused(w.books, "claim_already_decided", earning.verify_claim, w.books, w.actor("officerA"), c.id, reason="x")
    refused(w.books, "not_a_community", earning.award_directly, w.books, w.actor("officerA"),
            volunteer_id=w.users["v1"], org_unit_id=w.units["streetA"], amount=5, reference="r")


def test_claims_in_the_future_or_too_old_refused(w, clock):
    refused(w.books, "claim_in_future", patrol, w, "v1", "c1", 3, ago_h=1)
    refused(w.books, "claim_too_old", patrol, w, "v1", "c1", 2, ago_h=24 * 91)
    refused(w.books, "validation_failed", patrol, w, "v1", "c1", 13, ago_h=14)


@pytest.mark.parametrize("cap,first,second,code", [
    ("volunteer_daily_cap", 30, 20, "volunteer_daily_cap"),
    ("officer_daily_cap", 30, 20, "officer_daily_cap"),
])
def test_daily_caps_at_the_boundary(books, clock, cap, first, second, code):
    books.settings = books.settings.with_overrides({"earning": {cap: first + second}})
    w = build_world(books)
    officer = w.actor("officerA")
    give = lambda who, n, k: earning.award_directly(books, officer, volunteer_id=w.users[who],
                                                    org_unit_id=w.units["c1"] if who != "v3" else w.units["c2"],
                                                    amount=n, reference="roster", key=k)
    give("v1", first, "a")
    other = "v1" if code == "volunteer_daily_cap" else "v3"
    give(other, second, "b")  # exactly at the cap
    err = refused(books, code, give, other, 1, "c")
    assert err.details["remaining"] == 0
    clock.advance(24 * 3600)  # a new day
    assert give(other, 1, "d").status == "posted"


def test_monthly_cap(books, clock):
    books.settings = books.settings.with_overrides({"earning": {"volunteer_monthly_cap": 100, "volunteer_daily_cap": 60}})
    w = build_world(books)
    officer = w.actor("officerA")
    give = lambda n, k: earning.award_directly(books, officer, volunteer_id=w.users["v1"],
                                               org_unit_id=w.units["c1"], amount=n, reference="r", key=k)
    give(60, "1")
    clock.advance(24 * 3600)
    give(40, "2")
    clock.advance(24 * 3600)
    refused(books, "volunteer_monthly_cap", give, 1, "3")
    clock.advance(40 * 24 * 3600)
    assert give(1, "4").amount == 1


def test_budget_is_a_cap(books):
    w = build_world(books, budget=25)
    officer = w.actor("officerA")
    c = patrol(w, "v1", "c1", 2)
    earning.verify_claim(books, officer, c.id, reason="ok")
    c2 = patrol(w, "v1", "c1", 1, ago_h=5)
    refused(books, "insufficient_funds", earning.verify_claim, books, officer, c2.id, reason="ok")
    assert budget(w, "c1") == (5, 5)


def test_fund_rules(w):
    fund = w.actor("fund")
    refused(w.books, "permission_denied", earning.record_donation, w.books, w.actor("officerA"), amount=5, donor="x")
    refused(w.books, "permission_denied", earning.allocate_budget, w.books, w.actor("auditor"),
            org_unit_id=w.units["c1"], amount=5)
    pos = earning.fund_position(w.books, fund)
    assert pos["donated"] == 100_000 and pos["fund"] == 70_000 and pos["budgets"] == 30_000
    refused(w.books, "insufficient_funds", earning.allocate_budget, w.books, fund, org_unit_id=w.units["c1"],
            amount=70_001)
    refused(w.books, "not_a_community", earning.allocate_budget, w.books, fund, org_unit_id=w.units["streetA"],
            amount=1)
    earning.allocate_budget(w.books, fund, org_unit_id=w.units["c1"], amount=70_000, key="all")
    again = earning.allocate_budget(w.books, fund, org_unit_id=w.units["c1"], amount=70_000, key="all")
    assert again["replayed"] and earning.fund_position(w.books, fund)["fund"] == 0


def test_second_approval_over_threshold(w):
    maker = w.actor("officerA")
    at = earning.award_directly(w.books, maker, volunteer_id=w.users["v1"], org_unit_id=w.units["c1"],
                                amount=100, reference="r", key="at")
    assert at.status == "posted"  # at the threshold: no second approval
    over = earning.award_directly(w.books, maker, volunteer_id=w.users["v1"], org_unit_id=w.units["c1"],
                                  amount=101, reference="r", key="over")
    assert over.status == "pending_approval" and over.approval_reason == "amount_over_threshold"
    assert wallet(w, "v1") == 100 and budget(w, "c1") == (9_900, 9_799)
    refused(w.books, "own_approval", earning.approve_award, w.books, maker, over.id)
    refused(w.books, "out_of_scope", earning.approve_award, w.books, w.actor("officerB"), over.id)
    refused(w.books, "permission_denied", earning.approve_award, w.books, w.actor("v1"), over.id)
    ok = earning.approve_award(w.books, w.actor("officerA2"), over.id)
    assert ok.status == "posted" and ok.approved_by_id == w.users["officerA2"]
    assert wallet(w, "v1") == 201
    refused(w.books, "award_not_pending", earning.approve_award, w.books, w.actor("officerA3"), over.id)


def test_void_and_backfill(w, clock):
    c = patrol(w, "v1", "c1", 2, ago_h=24 * 8)  # submitted eight days after the work
    v = earning.verify_claim(w.books, w.actor("officerA"), c.id, reason="late roster")
    assert v.award_status == "pending_approval"
    award_id = v.award_id
    refused(w.books, "validation_failed", earning.void_award, w.books, w.actor("officerA2"), award_id, reason=" ")
    voided = earning.void_award(w.books, w.actor("officerA2"), award_id, reason="no roster for that night")
    assert voided.status == "voided"
    # the refusing officer approved nothing: they are named as the one who voided it, now and when read back
    assert (voided.approved_by_id, voided.voided_by_id) == (None, w.users["officerA2"])
    read = earning.get_award(w.books, w.actor("officerA"), award_id)
    assert (read.approved_by_id, read.voided_by_id) == (None, w.users["officerA2"])
    assert earning.get_claim(w.books, w.actor("officerA"), c.id).status == "rejected"
    assert wallet(w, "v1") == 0 and budget(w, "c1") == (10_000, 10_000)


def test_two_officers_approving_at_once_exactly_one_wins(w):
    award = earning.award_directly(w.books, w.actor("officerA"), volunteer_id=w.users["v1"],
                                   org_unit_id=w.units["c1"], amount=150, reference="r", key="big")
    approvers = [w.actor("officerA2"), w.actor("officerA3")]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def approve(actor):
        barrier.wait()
        try:
            earning.approve_award(w.books, actor, award.id)
            outcomes.append("ok")
        except DomainError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=approve, args=(a,)) for a in approvers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["award_not_pending", "ok"]
    assert wallet(w, "v1") == 150
    assert verify_books(w.books).ok


def test_concurrent_awards_cannot_both_squeeze_under_a_cap(books):
    books.settings = books.settings.with_overrides({"earning": {"volunteer_daily_cap": 50}})
    w = build_world(books)
    officers = [w.actor("officerA"), w.actor("officerA2")]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def give(i, actor):
        barrier.wait()
        try:
            earning.award_directly(books, actor, volunteer_id=w.users["v1"], org_unit_id=w.units["c1"], amount=30,
                                   reference="r", key=f"k{i}")
            outcomes.append("ok")
        except DomainError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=give, args=(i, a)) for i, a in enumerate(officers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok", "volunteer_daily_cap"]
    assert wallet(w, "v1") == 30


def test_the_same_direct_award_sent_four_times_at_once_awards_once(w):
    barrier = threading.Barrier(4)
    answers: list[object] = []

    def give() -> None:
        barrier.wait()
        try:
            answers.append(earning.award_directly(w.books, w.actor("officerA"), volunteer_id=w.users["v1"],
                                                  org_unit_id=w.units["c1"], amount=20, reference="r", key="once"))
        except Exception as exc:  # a duplicate-key crash is exactly the failure looked for
            answers.append(exc)

    threads = [threading.Thread(target=give) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(not isinstance(a, Exception) for a in answers), answers
    assert len({a.id for a in answers}) == 1  # type: ignore[attr-defined]
    assert wallet(w, "v1") == 20


def test_reversal_full_spent_and_partial(w):
    officer = w.actor("officerA")
    a = earning.award_directly(w.books, officer, volunteer_id=w.users["v1"], org_unit_id=w.units["c1"],
                               amount=50, reference="r", key="r1")
    refused(w.books, "out_of_scope", earning.reverse_award, w.books, w.actor("officerB"), a.id, reason="x")
    with w.books.session(readonly=True) as s:
        wal = wallet_account_id(s, w.users["v1"])
        from ledger.journal.accounts import account_by_code
        shop = account_by_code(s, "merchant:shop").id
    post(w.books, transfer("spend-1", "redeem", wal, shop, 20))
    err = refused(w.books, "beans_already_spent", earning.reverse_award, w.books, officer, a.id, reason="fraud")
    assert err.details == {"remaining": 50, "available": 30}
    part = earning.reverse_award(w.books, officer, a.id, reason="fraud", partial=True)
    assert part.reversed_amount == 30 and part.status == "posted"
    assert wallet(w, "v1") == 0 and budget(w, "c1")[0] == 10_000 - 20
    refused(w.books, "beans_already_spent", earning.reverse_award, w.books, officer, a.id, reason="x", partial=True)
    b = earning.award_directly(w.books, officer, volunteer_id=w.users["v1"], org_unit_id=w.units["c1"],
                               amount=10, reference="r", key="r2")
    full = earning.reverse_award(w.books, officer, b.id, reason="duplicate")
    assert full.status == "reversed" and full.reversed_amount == 10
    refused(w.books, "award_not_reversible", earning.reverse_award, w.books, officer, b.id, reason="again")
    assert verify_books(w.books).ok


def test_leaderboards(w, clock):
    officer = w.actor("officerA")
    for who, unit, n, key in (("v1", "c1", 30, "x1"), ("v3", "c2", 50, "x2"), ("v1", "c1", 5, "x3")):
        earning.award_directly(w.books, officer, volunteer_id=w.users[who], org_unit_id=w.units[unit], amount=n,
                               reference="r", key=key)
    rev = earning.award_directly(w.books, officer, volunteer_id=w.users["v1"], org_unit_id=w.units["c1"],
                                 amount=40, reference="r", key="x4")
    earning.reverse_award(w.books, officer, rev.id, reason="wrong person")
    board = earning.volunteer_leaderboard(w.books, w.actor("v2"), org_unit_id=w.units["streetA"])
    assert [(e["rank"], e["name"], e["beans"]) for e in board["entries"]] == [(1, "Bee", 50), (2, "V1", 35)]
    assert board["month"] == "2026-11"
    jinsha = earning.volunteer_leaderboard(w.books, w.actor("v2"), org_unit_id=w.units["c1"])
    assert [e["name"] for e in jinsha["entries"]] == ["V1"]
    communities = earning.community_leaderboard(w.books, w.actor("v2"), org_unit_id=w.units["streetA"])
    assert [(e["name"], e["beans"]) for e in communities["entries"]] == [("王旗营社区", 50), ("金沙社区", 35)]
    empty = earning.volunteer_leaderboard(w.books, w.actor("v2"), org_unit_id=w.units["streetA"], month="2026-10")
    assert empty["entries"] == []
    refused(w.books, "validation_failed", earning.volunteer_leaderboard, w.books, w.actor("v2"),
            org_unit_id=w.units["c1"], month="2026-13")


def test_expired_approval_hold_can_only_be_voided(w, clock):
    from ledger.journal.accounts import expire_holds

    over = earning.award_directly(w.books, w.actor("officerA"), volunteer_id=w.users["v1"],
                                  org_unit_id=w.units["c1"], amount=120, reference="r", key="late")
    clock.advance(15 * 24 * 3600)  # past the 14-day approval window
    refused(w.books, "pending_transfer_expired", earning.approve_award, w.books, w.actor("officerA2"), over.id)
    assert earning.void_award(w.books, w.actor("officerA2"), over.id, reason="too late").status == "voided"
    assert budget(w, "c1") == (10_000, 10_000) and wallet(w, "v1") == 0
    # and when the expiry worker got there first
    again = earning.award_directly(w.books, w.actor("officerA"), volunteer_id=w.users["v1"],
                                   org_unit_id=w.units["c1"], amount=130, reference="r", key="late2")
    clock.advance(15 * 24 * 3600)
    assert expire_holds(w.books) == 1
    assert earning.void_award(w.books, w.actor("officerA2"), again.id, reason="expired").status == "voided"
    assert budget(w, "c1") == (10_000, 10_000)
    assert verify_books(w.books).ok


def test_the_same_work_sent_twice_is_paid_once(w):
    """A direct award without a key, sent twice (a double-submitted form, a retried call), is one award; so is
    the same claim filed twice; a different reference is different work."""
    officer = w.actor("officerA")
    give = lambda ref: earning.award_directly(w.books, officer, volunteer_id=w.users["v1"], org_unit_id=w.units["c1"],
                                              amount=20, reference=ref)
    first, again = give("roster 11-27"), give("roster 11-27")
    assert first.id == again.id and wallet(w, "v1") == 20
    assert give("roster 11-28").id != first.id and wallet(w, "v1") == 40
    with w.books.session(readonly=True) as s:
        claims_before = s.scalar(select(func.count()).select_from(Claim))
    t1, t2 = tip(w, "v2"), tip(w, "v2")
    p1, p2 = patrol(w, "v2", "c3", 2), patrol(w, "v2", "c3", 2)
    assert (t1.id, p1.id) == (t2.id, p2.id) and t1.id != p1.id
    with w.books.session(readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(Claim)) == claims_before + 2


def test_tied_volunteers_and_communities_share_a_rank(w):
    officer = w.actor("officerA")
    for who, unit, n in (("v1", "c1", 30), ("v3", "c2", 30), ("v2", "c1", 10)):
        earning.award_directly(w.books, officer, volunteer_id=w.users[who], org_unit_id=w.units[unit], amount=n,
                               reference=f"tie {who}")
    board = earning.volunteer_leaderboard(w.books, w.actor("v2"), org_unit_id=w.units["streetA"])
    assert [(e["rank"], e["beans"]) for e in board["entries"]] == [(1, 30), (1, 30), (3, 10)]
    earning.award_directly(w.books, officer, volunteer_id=w.users["v3"], org_unit_id=w.units["c2"], amount=10,
                           reference="tie again")
    communities = earning.community_leaderboard(w.books, w.actor("v2"), org_unit_id=w.units["streetA"])
    assert [(e["rank"], e["beans"]) for e in communities["entries"]] == [(1, 40), (1, 40)]


def test_a_volunteer_patrols_only_in_their_own_community(w):
    refused(w.books, "out_of_scope", patrol, w, "v2", "c1", 2)  # v2 lives in c3
    assert patrol(w, "v2", "c3", 2).status == "submitted"
    assert patrol(w, "v1", "c1", 2).status == "submitted"  # v1's home is a building in c1


def test_an_allocation_sent_twice_without_a_key_moves_beans_once(w, clock):
    fund = w.actor("fund")
    first = earning.allocate_budget(w.books, fund, org_unit_id=w.units["c1"], amount=500, reason="十二月")
    again = earning.allocate_budget(w.books, fund, org_unit_id=w.units["c1"], amount=500, reason="十二月")
    assert first["transfer_id"] == again["transfer_id"] and again["replayed"]
    clock.advance(24 * 3600)  # the next day, the same allocation is a new one
    later = earning.allocate_budget(w.books, fund, org_unit_id=w.units["c1"], amount=500, reason="十二月")
    assert later["transfer_id"] != first["transfer_id"]
