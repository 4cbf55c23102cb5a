"""A real browser on a 360×740 phone: a volunteer checks in by showing the leader's code to Chromium's fake
camera (decoded by the same jsQR as the till), checks out, and the hours and beans appear; the coverage
board's map (Leaflet, no tiles) on a phone and a 1024×768 desk, redrawn when a post's state changes;
screenshots go to test-artifacts/browser/."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from ledger import patrols
from ledger.access.identity import wallet_of
from ledger.journal.accounts import get_account
from tests.admin_ui.test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, _require, write_y4m
from tests.conftest import FakeClock
from tests.patrol_world import build_patrol_world

pytestmark = pytest.mark.slow
PHONE = {"width": 360, "height": 740}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    from werkzeug.serving import make_server

    from doors import books_of
    from goldbean.app import create_app
    from goldbean.migrate import upgrade
    from ledger.redemption.codes import qr_png

    folder = tmp_path_factory.mktemp("patrol-browser")
    url = f"sqlite:///{folder / 'goldbean.db'}"
    upgrade(url)
    clock = FakeClock()
    app = create_app({"DATABASE_URL": url, "INSTANCE_PATH": str(folder / "instance"), "SECRET_KEY": "e2e",
                      "SESSION_COOKIE_SECURE": False, "CLOCK": clock, "PATROL_BOARD_POLL_S": 1})
    books = books_of(app)
    pw = build_patrol_world(books)
    patrols.sign_up(books, pw.w.actor("v1"), pw.shift_id)
    clock.now = pw.start
    code = patrols.leader_code(books, pw.w.actor("leader"), pw.post_id)["code"]
    write_y4m(qr_png(code, box_size=8), folder / "camera.y4m")
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"base": f"http://127.0.0.1:{httpd.server_port}", "pw": pw, "clock": clock, "folder": folder}
    finally:
        httpd.shutdown()
        thread.join(5)
        books.engine.dispose()


@pytest.fixture(scope="module")
def browser(world: dict) -> Iterator[object]:
    _require(CHROMIUM is not None, "chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS + [
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={world['folder'] / 'camera.y4m'}"])
        try:
            yield b
        finally:
            b.close()


def _phone(browser, base: str, username: str):
    context = browser.new_context(viewport=PHONE, locale="zh-CN", permissions=["camera"], base_url=base)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto("/signin")
    page.fill("#username", username)
    page.fill("#password", "pw")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    return context, page


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_check_in_by_the_leaders_code_on_the_camera_then_out(browser, world) -> None:
    from playwright.sync_api import expect

    pw, clock = world["pw"], world["clock"]
    context, page = _phone(browser, world["base"], "v1")
    page.goto("/patrols")
    card = page.locator(f"#mine-{pw.shift_id}")
    card.locator("button.scan").click()
    expect(card.locator("input[name=code]")).not_to_have_value("", timeout=15_000)
    _shot(page, "patrols-phone-before-check-in")
    card.locator(f"#in-code-{pw.shift_id}").click()
    expect(page.locator(".flash.ok")).to_contain_text("已签到")
    _shot(page, "patrols-phone-checked-in")
    # the leader's page and the officer's board on the same phone size
    leader_ctx, leader = _phone(browser, world["base"], "leader")
    leader.goto(f"/patrols/posts/{pw.post_id}/leader")
    expect(leader.locator("#leader-qr")).to_be_visible()
    _shot(leader, "patrols-phone-leader-code")
    officer_ctx, officer = _phone(browser, world["base"], "officerA2")
    officer.goto("/patrols/board")
    expect(officer.locator(f"#post-{pw.post_id}")).to_contain_text("V1")
    _shot(officer, "patrols-phone-board")
    officer.goto("/patrols/desk")
    expect(officer.locator("#publish-shift")).to_be_visible()
    _shot(officer, "patrols-phone-desk")
    # two hours later: check out by typing the leader's fresh code (a handheld scanner does the same)
    clock.now = pw.end
    code = patrols.leader_code(pw.w.books, pw.w.actor("leader"), pw.post_id)["code"]
    context.close()  # the session idled out over the two hours: sign in again
    context, page = _phone(browser, world["base"], "v1")
    page.goto("/patrols")
    card = page.locator(f"#mine-{pw.shift_id}")
    card.locator("input[name=code]").fill(code)
    card.locator(f"#out-code-{pw.shift_id}").click()
    expect(page.locator(".flash.ok")).to_contain_text("已签退")
    # the hours and the beans on the shift's card, in the records and in the wallet
    counted = page.locator(f"#counted-{pw.shift_id}")
    expect(counted).to_contain_text("2.00 小时")
    expect(counted).to_contain_text("20 金豆")
    expect(counted).to_contain_text("已发放到钱包")
    _shot(page, "patrols-phone-checked-out")
    page.goto("/patrols/records")
    expect(page.locator("table")).to_contain_text("2.00")
    _shot(page, "patrols-phone-records")
    page.goto("/wallet")
    expect(page.locator("#balance-number")).to_have_text("20")
    assert get_account(pw.w.books, wallet_of(pw.w.books, pw.w.users["v1"])).balance == 20
    for ctx in (context, leader_ctx, officer_ctx):
        ctx.close()


_LABELS_CLEAR = """() => {
  const frame = document.querySelector('#board-map').getBoundingClientRect();
  const shown = [...document.querySelectorAll('.post-label')].filter(n => getComputedStyle(n).visibility !== 'hidden')
    .map(n => n.getBoundingClientRect());
  const dots = [...document.querySelectorAll('path.leaflet-interactive')].map(n => n.getBoundingClientRect());
  const hit = (a, b) => !(a.right <= b.left || a.left >= b.right || a.bottom <= b.top || a.top >= b.bottom);
  if (shown.length < 3) return false;
  return shown.every((a, i) => a.left >= frame.left && a.right <= frame.right
    && shown.every((b, j) => i === j || !hit(a, b)) && dots.filter(d => hit(a, d)).length === 0);
}"""


def _board_world(pw, clock) -> dict[str, int]:
    """Four more posts around the first, an hour after its shift: covered, short, uncovered and no shift."""
    import datetime as dt

    from ledger.patrols import Proof
    from tests.patrol_world import LAT, LON

    books, officer = pw.w.books, pw.w.actor("officerA2")
    clock.now = pw.end + dt.timedelta(hours=1)
    start = clock.now + dt.timedelta(minutes=1)
    places = {"金沙二组岗": ("g1", 0.0, 0.003, 1), "社区服务站岗": ("c1", -0.0036, 0.0, 2),
              "1栋北门岗": ("b1", 0.0018, -0.0022, 2), "金沙东路口岗": ("c1", 0.004, 0.004, 0)}
    posts, shifts = {}, {}
    for name, (unit, dlat, dlon, needed) in places.items():
        post = patrols.create_post(books, officer, org_unit_id=pw.w.units[unit], name=name, latitude=LAT + dlat,
                                   longitude=LON + dlon, radius_m=60)
        posts[name] = post.id
        if needed:
            shifts[name] = patrols.publish_shift(books, officer, post_id=post.id, starts_at=start,
                                                 ends_at=start + dt.timedelta(hours=2), needed=needed).id
    for who, name in (("v3", "金沙二组岗"), ("v2", "社区服务站岗"), ("leader", "1栋北门岗")):
        patrols.sign_up(books, pw.w.actor(who), shifts[name])
    clock.now = start + dt.timedelta(minutes=1)
    for who, name in (("v3", "金沙二组岗"), ("v2", "社区服务站岗")):
        sign = patrols.post_sign(books, officer, posts[name])["code"]
        lat, lon = LAT + places[name][1], LON + places[name][2]
        patrols.check_in(books, pw.w.actor(who), shifts[name], Proof(post_sign=sign, latitude=lat, longitude=lon,
                                                                      accuracy_m=5))
    return {"posts": posts, "shifts": shifts, "places": places}


def test_the_coverage_board_map_on_a_phone_and_a_desk(browser, world) -> None:
    from playwright.sync_api import expect

    from ledger.patrols import Proof
    from tests.patrol_world import LAT, LON

    pw, clock = world["pw"], world["clock"]
    board = _board_world(pw, clock)
    for size, viewport in (("phone", PHONE), ("desk", {"width": 1024, "height": 768})):
        context, page = _phone(browser, world["base"], "officerA2")
        page.set_viewport_size(viewport)
        errors: list[str] = []
        page.on("console", lambda m, errors=errors: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
        page.goto("/patrols/board")
        expect(page.locator(".leaflet-container")).to_be_visible()
        # one dot a post in scope (the first post and the four above), each with its name beside it
        expect(page.locator("path.leaflet-interactive")).to_have_count(5)
        expect(page.locator(".leaflet-tooltip.post-label")).to_have_count(5)
        # the names shown cover no dot and no other name, and stay inside the map
        assert page.evaluate(_LABELS_CLEAR), f"labels overlap on the {size}"
        expect(page.locator("#board-counts [data-count=covered]")).to_have_text("1")
        expect(page.locator("#board-counts [data-count=uncovered]")).to_have_text("1")
        expect(page.locator(f"#post-{board['posts']['社区服务站岗']}")).to_contain_text("1/2")
        # nothing wider than the screen: no sideways scrolling on the phone
        assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        map_box = page.locator("#board-map").bounding_box()
        assert map_box["height"] >= 280 and map_box["width"] <= viewport["width"]
        _shot(page, f"patrols-board-{size}")
        assert errors == [], errors
        context.close()
    # the page redraws itself when a post's state changes (polled)
    context, page = _phone(browser, world["base"], "officerA2")
    page.goto("/patrols/board")
    expect(page.locator("#board-counts [data-count=uncovered]")).to_have_text("1")
    sign = patrols.post_sign(pw.w.books, pw.w.actor("officerA2"), board["posts"]["1栋北门岗"])["code"]
    place = board["places"]["1栋北门岗"]
    patrols.check_in(pw.w.books, pw.w.actor("leader"), board["shifts"]["1栋北门岗"],
                     Proof(post_sign=sign, latitude=LAT + place[1], longitude=LON + place[2], accuracy_m=5))
    expect(page.locator("#board-counts [data-count=uncovered]")).to_have_text("0", timeout=10_000)
    expect(page.locator(f"#post-{board['posts']['1栋北门岗']}")).to_contain_text("Leader")
    page.locator(f"#post-{board['posts']['1栋北门岗']}").click()
    expect(page.locator(".leaflet-popup-content")).to_contain_text("1栋北门岗")
    context.close()
