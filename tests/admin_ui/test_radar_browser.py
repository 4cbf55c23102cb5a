"""The radar in a real browser (Playwright, Debian's Chromium) on a 360x740 phone, through the held-stream
server in front of the app as ``goldbean serve`` runs it: a volunteer's open wallet holds a stream and shows
a notice an officer publishes; a volunteer of another community's does not; after the network drops (the
held connection broken) and returns, the notice published meanwhile arrives (``Last-Event-ID``).
Screenshots of the radar pages go to ``test-artifacts/browser/radar/``."""

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


@pytest.fixture(scope="module")
def front(server):
    """The events server in front of the app (werkzeug here, gunicorn under ``goldbean serve``)."""
    from goldbean import events

    port = int(server["base"].rsplit(":", 1)[1])
    running = events.start_in_thread(server["app"], upstream=f"127.0.0.1:{port}",
                                     options=events.Options(heartbeat_s=2))
    running.base = f"http://127.0.0.1:{running.port}"
    yield running
    running.stop()


def _held(front, username: str) -> int:
    """How many streams the server holds for ``username``."""
    from ledger.schema import User

    books = front.server.hub.books
    with books.session(readonly=True) as s:
        uid = s.scalar(select(User.id).where(User.username == username))
    return front.call(lambda: sum(1 for st in front.server.hub.streams if st.user_id == uid and not st.done))


def _publish(books, title: str, unit_code: str = "panlong.gulou.jinsha", bounty: int = 0):
    with books.session(readonly=True) as s:
        officer = load_actor(s, s.scalar(select(User.id).where(User.username == "officer")))
        unit = s.scalar(select(OrgUnit.id).where(OrgUnit.code == unit_code))
    return radar.publish_notice(books, officer, kind="寻人", title=title, body="身穿蓝色外套,约75岁,说昆明话",
                                area=[unit], ends_at=books.now() + dt.timedelta(days=2), bounty=bounty)


def test_live_notice_reaches_the_open_wallet_of_the_area_only(browser, server, front) -> None:
    books = server["books"]
    with books.session() as s:
        other = create_user_in(s, "wq_volunteer", "goldbean", "王旗营志愿者", password_hash=hash_password("goldbean"))
        grant_role_in(s, other.id, "volunteer", s.scalar(select(OrgUnit.id).where(
            OrgUnit.code == "panlong.gulou.wangqiying")))
    out = ARTIFACTS / "radar"
    out.mkdir(parents=True, exist_ok=True)
    ctx, page = _sign_in(browser, front.base, "volunteer", PHONE)
    octx, opage = _sign_in(browser, front.base, "wq_volunteer", PHONE)
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    for p in (page, opage):
        p.goto("/wallet")
        p.wait_for_load_state("load")  # not "networkidle": a held stream keeps the network busy
    for _ in range(100):  # both wallets' EventSources are held by the events server, not polling
        if _held(front, "volunteer") == 1 and _held(front, "wq_volunteer") == 1:
            break
        page.wait_for_timeout(100)
    assert _held(front, "volunteer") == 1 and _held(front, "wq_volunteer") == 1
    first = _publish(books, "寻找走失老人", bounty=50)
    page.wait_for_selector(f"#live-notice-{first.id}", timeout=5_000)
    page.screenshot(path=str(out / "wallet_live.png"))
    opage.wait_for_timeout(2_500)  # a heartbeat later: still nothing for the other wallet
    assert opage.locator("#radar-live a").count() == 0

    ctx.set_offline(True)  # the phone loses its network: the held connection breaks
    front.call(lambda: [st.close() for st in list(front.server.hub.streams)])
    page.wait_for_timeout(1_000)
    second = _publish(books, "寻找丢失的电动车")
    page.wait_for_timeout(1_000)
    ctx.set_offline(False)
    page.wait_for_selector(f"#live-notice-{second.id}", timeout=15_000)  # resumed from Last-Event-ID
    assert _held(front, "volunteer") == 1
    assert opage.locator("#radar-live a").count() == 0
    assert not problems, problems

    page.goto("/radar")
    page.screenshot(path=str(out / "radar_list.png"), full_page=True)
    page.goto(f"/radar/{first.id}")
    page.screenshot(path=str(out / "notice.png"), full_page=True)
    ctx.close()
    octx.close()
    dctx, desk = _sign_in(browser, front.base, "officer", PHONE)
    desk.goto("/radar/desk")
    desk.screenshot(path=str(out / "desk.png"), full_page=True)
    dctx.close()
    anon = browser.new_context(viewport=PHONE, base_url=server["base"], locale="zh-CN")
    report = anon.new_page()
    report.goto("/report")
    report.screenshot(path=str(out / "report.png"), full_page=True)
    anon.close()


def test_an_officer_on_a_phone_shows_a_call_back_number_and_taps_to_call(browser, server) -> None:
    """显示电话 at 360 px: the button beside the masked number, then the number as one big tel: link that fits
    the screen (nothing scrolls sideways)."""
    books = server["books"]
    with books.session(readonly=True) as s:
        unit = s.scalar(select(OrgUnit.id).where(OrgUnit.code == "panlong.gulou.jinsha"))
    report = radar.submit_report(books, category="theft", text="楼下有人撬电动车锁", source="198.51.100.30",
                                 phone="13912345678", org_unit_id=unit, consent=True)
    out = ARTIFACTS / "radar"
    out.mkdir(parents=True, exist_ok=True)
    from tests.admin_ui.test_accessibility import AXE, _findings

    ctx, page = _sign_in(browser, server["base"], "officer", PHONE)
    if AXE.exists():  # the same serious/critical check as every other page (test_accessibility)
        ctx.add_init_script(path=str(AXE))
    page.goto(f"/radar/desk#report-{report.id}")
    page.locator(f"#report-{report.id}").screenshot(path=str(out / "phone_masked.png"))
    button = page.locator(f"#reveal-button-{report.id}")
    assert button.inner_text().strip() == "显示电话" and "139****5678" in page.locator(f"#report-{report.id}").inner_text()
    assert button.bounding_box()["height"] >= 48
    with page.expect_navigation():
        button.click()
    call = page.locator(f"#call-{report.id}")
    assert call.get_attribute("href") == "tel:13912345678"
    box = call.bounding_box()
    assert box["height"] >= 60 and box["width"] >= 300, box
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.screenshot(path=str(out / "phone_revealed.png"), full_page=True)
    if AXE.exists():
        assert _findings(page) == []
    ctx.close()
