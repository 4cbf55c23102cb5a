"""The till on a 1024x768 tablet, as a cashier uses it: the confirm button on the first screen; the camera
(Chromium's fake camera showing a volunteer's code) reads the code and the customer's masked name and balance
appear before confirming; a quick amount, 收款成功 with the camera still on; a refund asks for a reason and a
confirmation and shows the customer."""

from __future__ import annotations

import re

from tests.admin_ui.test_browser import JSQR, ROOT, _require, _shot, _sign_in, browser, server, write_y4m

TABLET = {"width": 1024, "height": 768}
__all__ = ["browser", "server"]


def _wallet_code(server) -> tuple[str, int]:
    from sqlalchemy import select

    from ledger.access.identity import wallet_account_id
    from ledger.journal.accounts import get_account
    from ledger.redemption import codes
    from ledger.schema import User

    books = server["books"]
    with books.session(readonly=True) as s:
        wallet = wallet_account_id(s, s.scalar(select(User.id).where(User.username == "volunteer")))
    return codes.issue_wallet_code(books, wallet).code, get_account(books, wallet).available


def test_the_tablet_till_scans_shows_the_customer_and_confirms_on_the_first_screen(browser, server) -> None:
    from playwright.sync_api import expect

    from ledger.redemption import codes

    _require(JSQR.exists(), f"{JSQR.relative_to(ROOT)} is missing (make install runs npm install)")
    code, available = _wallet_code(server)
    write_y4m(codes.qr_png(code, box_size=4, border=4), server["folder"] / "camera.y4m")
    context, till = _sign_in(browser, server["base"], "cashier", TABLET)
    box = till.locator("#redeem").bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= TABLET["height"], box  # on the first screen
    _shot(till, "till-tablet")
    till.click("#camera-start")
    expect(till.locator("#customer-name")).to_have_text("赵**者", timeout=20_000)
    expect(till.locator("#customer-beans")).to_have_attribute("data-value", str(available))
    assert till.input_value("#code") == code
    box = till.locator("#redeem").bounding_box()  # still on the first screen with the customer shown
    assert box["y"] + box["height"] <= TABLET["height"], box
    till.screenshot(path=str(ROOT / "test-artifacts" / "browser" / "till-tablet-scanned.png"))
    till.click("#quick button[data-amount='15']")
    expect(till.locator("#redeem")).to_have_text("确认收款 15 金豆")
    expect(till.locator("#redeem")).to_be_focused()
    till.keyboard.press("Enter")
    expect(till.locator("#paid")).to_be_visible()
    expect(till.locator("#paid-title")).to_have_text("收款成功")
    assert till.inner_text("#paid-amount") == "15" and till.inner_text("#paid-customer") == "顾客：赵**者"
    till.screenshot(path=str(ROOT / "test-artifacts" / "browser" / "till-tablet-paid.png"))
    assert till.evaluate("document.getElementById('camera').srcObject.active"), "the camera stays on"
    till.click("#paid-next")
    expect(till.locator("#paid")).to_be_hidden()
    assert till.input_value("#code") == "" and till.locator("#customer").is_hidden()
    # the same code again (still in front of the camera) is not looked up again: the next customer's code is
    assert till.locator("#till-error").is_hidden()

    # a refund: the customer, how many beans, a reason, then the confirmation
    row = till.locator("#recent a[id^=refund-]").first
    with till.expect_navigation():
        row.click()
    expect(till.locator("#refund-customer")).to_have_text("赵**者")
    assert till.input_value("#refund-amount") == "15"
    till.click("#refund-confirm")  # no reason: the browser's own check stops it
    assert "/refund" in till.url and till.locator("#refund-reason:invalid").count() == 1
    till.fill("#refund-reason", "顾客退货")
    _shot(till, "till-refund")
    with till.expect_navigation():
        till.click("#refund-confirm")
    expect(till.locator(".flash.ok")).to_contain_text("已退还 15 金豆")
    assert re.search(r"/till", till.url)
    context.close()
