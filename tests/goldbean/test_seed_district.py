"""The demo district: idempotent, verifiable, and the demo users can sign in and act."""

from __future__ import annotations

from sqlalchemy import func, select

from goldbean.seed import seed_demo
from ledger import earning
from ledger.access.identity import authenticate
from ledger.journal.verify import verify_books
from ledger.schema import Award, Claim, OrgUnit, PatrolPost, PatrolShift, Transfer


def test_seed_demo_twice_and_use_it(books):
    summary = seed_demo(books)
    assert "officer" in summary and "goldbean" in summary

    def counts():
        with books.session(readonly=True) as s:
            return tuple(s.scalar(select(func.count()).select_from(t))
                         for t in (OrgUnit, Claim, Award, Transfer, PatrolPost, PatrolShift))

    first = counts()
    assert first[4] == 4 and first[5] >= 4 * 14  # the demo posts, an evening patrol at each for two weeks
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


def test_a_first_tour_of_the_demo_works(books):
    """The demo volunteer's first patrol is paid (the seeded history leaves today's caps alone), their wallet
    holds nothing that cannot be confirmed, and a second seed-demo says it changed nothing."""
    import datetime as dt

    from goldbean.seed_district import users_by_name
    from ledger import redemption
    from ledger.access.identity import load_actor

    assert "seeded" in seed_demo(books)
    users = users_by_name(books)
    with books.session(readonly=True) as s:
        volunteer, officer = load_actor(s, users["volunteer"]), load_actor(s, users["officer"])
        home = s.scalar(select(OrgUnit.id).where(OrgUnit.code == "panlong.gulou.jinsha"))
    assert redemption.wallet_overview(books, volunteer, history=0)["on_hold"] == 0
    start = books.now() - dt.timedelta(hours=4)
    patrol = earning.submit_claim(books, volunteer, kind="patrol", org_unit_id=home, occurred_at=start,
                                  ended_at=start + dt.timedelta(hours=3), team="金沙夜巡队")
    verified = earning.verify_claim(books, officer, patrol.id, reason="第一次试用")
    assert verified.status == "verified" and verified.amount > 0
    again = seed_demo(books)
    assert "nothing changed" in again and "seeded" not in again


def test_the_sign_in_page_names_every_demo_user(app_config) -> None:
    from doors import books_of
    from goldbean.app import create_app
    from goldbean.seed_district import DEMO_USERS

    app = create_app({**app_config, "DEMO": True})
    try:
        page = app.test_client().get("/signin").text
        listed = page.split('id="demo-users">', 1)[1].split("</p>", 1)[0]
        assert all(name in listed for name, *_ in DEMO_USERS), listed
    finally:
        books_of(app).engine.dispose()


def test_the_trial_balance_files_wallets_under_their_volunteers_community(books):
    from ledger.audit.reports import trial_balance

    seed_demo(books)
    by_org = trial_balance(books).by_org
    by_name = {o["name"]: o for o in by_org if o["org_unit_id"] is not None}
    assert by_name["金沙社区"]["by_kind"].get("wallet", 0) > 0
    unowned = next((o for o in by_org if o["org_unit_id"] is None), {"by_kind": {}, "name": ""})
    assert unowned["by_kind"].get("wallet", 0) == 0 and unowned["name"] == ""
