"""The radar in a real browser (Playwright, Debian's Chromium) on a 360x740 phone: a volunteer's open wallet
shows a notice an officer publishes (live, short-poll SSE); a volunteer of another community's does not;
after the network drops and returns, the notice published meanwhile arrives. Screenshots of the radar
pages go to ``test-artifacts/browser/radar/``."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from ledger import radar
from ledger.access.identity import create_user_in, grant_role_in, hash_password, load_actor
from ledger.schema import OrgUnit, User
from tests.admin_ui.test_browser import ARTIFACTS, _sign_in, browser, server

pytestmark = pytest.mark.slow
PHONE = {"width": 360, "height": 740}


def _publish(books, title: str, unit_code: str = "panlong.gulou.jinsha", bounty: int = 0):
    with books.session(readonly=True) as s:
        officer = load_actor(s, s.scalar(select(User.id).where(User.username == "officer")))
        unit = s.scalar(select(OrgUnit.id).where(OrgUnit.code == unit_code))
    return radar.publish_notice(books, officer, kind="寻人", title=title, body="身穿蓝色外套,约75岁,说昆明话",
                                area=[unit], ends_at=books.now() + dt.timedelta(days=2), bounty=bounty)


def test_live_notice_reaches_the_open_wallet_of_the_area_only(browser, server) -> None:
    books = server["books"]
    with books.session() as s:
        other = create_user_in(s, "wq_volunteer", "goldbean", "王旗营志愿者", password_hash=hash_password("goldbean"))
        grant_role_in(s, other.id, "volunteer", s.scalar(select(OrgUnit.id).where(
            OrgUnit.code == "panlong.gulou.wangqiying")))
    out = ARTIFACTS / "radar"
    out.mkdir(parents=True, exist_ok=True)
    ctx, page = _sign_in(browser, server["base"], "volunteer", PHONE)
    octx, opage = _sign_in(browser, server["base"], "wq_volunteer", PHONE)
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    for p in (page, opage):
        p.goto("/wallet")
        p.wait_for_load_state("networkidle")
    first = _publish(books, "寻找走失老人", bounty=50)
    page.wait_for_selector(f"#live-notice-{first.id}", timeout=5_000)
    page.screenshot(path=str(out / "wallet_live.png"))
    opage.wait_for_timeout(2_500)  # two reconnects of the other wallet: still nothing for it
    assert opage.locator("#radar-live a").count() == 0

    ctx.set_offline(True)
    page.wait_for_timeout(2_000)
    second = _publish(books, "寻找丢失的电动车")
    ctx.set_offline(False)
    page.wait_for_selector(f"#live-notice-{second.id}", timeout=15_000)
    assert not problems, problems

    page.goto("/radar")
    page.screenshot(path=str(out / "radar_list.png"), full_page=True)
    page.goto(f"/radar/{first.id}")
    page.screenshot(path=str(out / "notice.png"), full_page=True)
    ctx.close()
    octx.close()
    dctx, desk = _sign_in(browser, server["base"], "officer", PHONE)
    desk.goto("/radar/desk")
    desk.screenshot(path=str(out / "desk.png"), full_page=True)
    dctx.close()
    anon = browser.new_context(viewport=PHONE, base_url=server["base"], locale="zh-CN")
    report = anon.new_page()
    report.goto("/report")
    report.screenshot(path=str(out / "report.png"), full_page=True)
    anon.close()
