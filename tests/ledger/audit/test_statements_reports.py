"""Trial balance at past moments, fund reconciliation, settlement statements and the anomaly reports."""

from __future__ import annotations

import datetime as dt

import pytest

from ledger.audit.reports import (
    AnomalyParams,
    anomaly_report,
    fund_reconciliation,
    settlement_statements,
    trial_balance,
)
from ledger.audit.statements import account_statement
from ledger.journal.accounts import open_account, post
from ledger.journal.posting import hold, post_hold, transfer
from tests.ledger.audit.test_statements import DAY0, at_day, day_start, stamp


@pytest.fixture
def district(books):
    ids = {k: open_account(books, k, kind, owner_ref=owner).id for k, kind, owner in (
        ("donations", "donations", None), ("fund", "fund", None), ("budget:1", "budget", "org:1"),
        ("budget:2", "budget", "org:2"), ("payout", "payout", None), ("expiry", "expiry", None),
        ("shop", "merchant", None), ("shop2", "merchant", None))}
    for i in range(1, 9):
        ids[f"w{i}"] = open_account(books, f"w{i}", "wallet").id
    day = {"n": 0}

    def go(day_no: int, *reqs):
        done = post(books, list(reqs))
        day["n"] += 1
        stamp(books, [t.id for t in done], at_day(day_no, day["n"]))
        return done

    go(0, transfer("don", "donate", ids["donations"], ids["fund"], 50_000))
    go(0, transfer("al1", "allocate", ids["fund"], ids["budget:1"], 10_000),
       transfer("al2", "allocate", ids["fund"], ids["budget:2"], 10_000))
    # officer:1 gives almost everything to w1; officer:2 spreads awards; w8 is paid only by officer:3
    for i in range(8):
        go(1, transfer(f"o1-{i}", "award", ids["budget:1"], ids["w1"], 95 + i % 3, actor="officer:1"))
    for i in range(8):
        go(1, transfer(f"o2-{i}", "award", ids["budget:2"], ids[f"w{2 + i % 6}"], 20, actor="officer:2"))
    for i in range(5):
        go(1, transfer(f"o3-{i}", "award", ids["budget:2"], ids["w8"], 10, actor="officer:3"))
    # an award held for a second approval, posted by officer:9: it still counts for officer:1
    go(1, hold("o1-h", "award", ids["budget:1"], ids["w1"], 150, 600, actor="officer:1"))
    go(2, post_hold("o1-hp", "o1-h", actor="officer:9"))
    # redemptions: w1 spends far more at the shop than anyone else
    go(3, transfer("r1", "redeem", ids["w1"], ids["shop"], 600))
    for i in range(2, 7):
        go(3, transfer(f"r{i}", "redeem", ids[f"w{i}"], ids["shop"], 5))
    # six refunds within an hour at the shop, then one much later
    for i in range(6):
        go(4, transfer(f"rf{i}", "refund", ids["shop"], ids["w1"], 10))
    go(6, transfer("rf-late", "refund", ids["shop"], ids["w1"], 10))
    go(7, transfer("settle1", "settle", ids["shop"], ids["payout"], 500, reference="settlement:1"))
    go(8, transfer("exp1", "expire", ids["w2"], ids["expiry"], 5))
    return ids


def test_trial_balance_at_past_moments_sums_to_zero_and_matches_statements(books, district):
    for day in range(10):
        moment = day_start(DAY0 + dt.timedelta(days=day + 1)) - dt.timedelta(microseconds=1)
        tb = trial_balance(books, moment)
        assert tb.total == 0 and tb.balanced
        for row in tb.accounts:
            stmt = account_statement(books, row.account_id, DAY0 - dt.timedelta(days=1), DAY0 + dt.timedelta(days=day))
            assert stmt.closing_balance == row.balance, (day, row.code)
        assert fund_reconciliation(books, moment).difference == 0
    early = trial_balance(books, day_start(DAY0) - dt.timedelta(seconds=1))
    assert all(r.balance == 0 for r in early.accounts)
    now = trial_balance(books)
    assert now.by_kind["donations"] == -50_000 and now.by_kind["payout"] == 500 and now.by_kind["expiry"] == 5
    orgs = {o["org_unit_id"]: o for o in now.by_org}
    assert set(orgs[1]["by_kind"]) == {"budget"} and orgs[1]["total"] == tb.accounts[2].balance
    rec = fund_reconciliation(books)
    assert (rec.donated, rec.accounted, rec.difference, rec.ok) == (50_000, 50_000, 0, True)


def test_settlement_statement(books, district):
    [shop] = settlement_statements(books, DAY0, DAY0 + dt.timedelta(days=9), "shop")
    assert (shop.opening_balance, shop.redeemed, shop.refunded, shop.settled, shop.closing_balance) == (
        0, 625, 70, 500, 55)
    assert shop.settlements[0]["reference"] == "settlement:1"
    late = settlement_statements(books, DAY0 + dt.timedelta(days=5), DAY0 + dt.timedelta(days=9), "shop")[0]
    assert (late.opening_balance, late.redeemed, late.refunded, late.settled) == (565, 0, 10, 500)
    assert len(settlement_statements(books, DAY0, DAY0)) == 2  # every merchant


def test_anomalies(books, district):
    params = AnomalyParams(threshold=100, min_awards=5)
    report = anomaly_report(books, DAY0, DAY0 + dt.timedelta(days=9), params)
    officers = {r["officer"]: r for r in report.officer_concentration}
    assert "officer:1" in officers and officers["officer:1"]["awards"] == 9  # the held award counts for them
    assert "officer:3" in officers and "officer:2" not in officers
    assert "officer:9" not in officers
    single = {r["wallet"]: r["officer"] for r in report.single_source_volunteers}
    assert single == {"w1": "officer:1", "w8": "officer:3"}
    under = {r["officer"]: r["just_under"] for r in report.under_threshold}
    assert under == {"officer:1": 8}  # 95..97 are within 10 % under 100; the 150 is over it
    assert [(r["wallet"], r["merchant"]) for r in report.redemption_outliers] == [("w1", "shop")]
    [burst] = report.refund_bursts
    assert (burst["merchant"], burst["refunds"], burst["beans"]) == ("shop", 6, 60)
    assert report.backfilled_claims == []  # the claims table exists, with no claims
    # the period matters: nothing happened on day 5
    quiet = anomaly_report(books, DAY0 + dt.timedelta(days=5), DAY0 + dt.timedelta(days=5), params)
    assert quiet.count() == 0


def test_backfilled_claims(books, district):
    from ledger.access.identity import create_org_unit_in, create_user_in
    from ledger.earning.models import Claim

    with books.session() as s:
        unit = create_org_unit_in(s, "c", "金沙社区", "community")
        user = create_user_in(s, "v", "pw-v-123456", "V")
        submitted = at_day(9, 0)
        for days_late, ident in ((1, "prompt"), (30, "late")):
            s.add(Claim(kind="tip", status="submitted", volunteer_id=user.id, submitted_by_id=user.id,
                        org_unit_id=unit.id, category="other", description=ident,
                        occurred_at=submitted - dt.timedelta(days=days_late), submitted_at=submitted))
    report = anomaly_report(books, DAY0, DAY0 + dt.timedelta(days=9), AnomalyParams(backfill_days=7))
    assert [c["days_late"] for c in report.backfilled_claims] == [30.0]
    assert report.backfilled_claims[0]["volunteer_name"] == "V (v)"


def test_anomalies_name_the_people_behind_user_refs(books, district):
    """An auditor reads who: beside ``user:N`` and ``wallet:user:N``, the person's name and username."""
    from ledger.access.identity import create_user_in, wallet_account_id

    with books.session() as s:
        officer = create_user_in(s, "li", "pw-li-123456", "李警官").id
        volunteer = create_user_in(s, "zhao", "pw-zhao-123456", "赵志愿者").id
        wallet = wallet_account_id(s, volunteer)
    done = post(books, [transfer(f"named-{i}", "award", district["budget:1"], wallet, 10, actor=f"user:{officer}")
                        for i in range(5)])
    stamp(books, [t.id for t in done], at_day(2, 0))
    report = anomaly_report(books, DAY0, DAY0 + dt.timedelta(days=9), AnomalyParams(threshold=100, min_awards=5))
    [mine] = [r for r in report.officer_concentration if r["officer"] == f"user:{officer}"]
    assert mine["officer_name"] == "李警官 (li)" and mine["top_wallets"][0]["holder"] == "赵志愿者 (zhao)"
    [paid] = [r for r in report.single_source_volunteers if r["officer"] == f"user:{officer}"]
    assert (paid["holder"], paid["officer_name"]) == ("赵志愿者 (zhao)", "李警官 (li)")
