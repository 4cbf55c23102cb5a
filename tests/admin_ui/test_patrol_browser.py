"""A real browser on a 360×740 phone: a volunteer checks in by showing the leader's code to Chromium's fake
camera (decoded by the same jsQR as the till), checks out, and the hours and beans appear; screenshots of
the volunteer's page, the leader's code and the coverage board go to test-artifacts/browser/."""

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
                      "SESSION_COOKIE_SECURE": False, "CLOCK": clock})
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
