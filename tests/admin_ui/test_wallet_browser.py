"""The wallet on a 360x740 phone, as a volunteer opens it at the till: the pay code comes first and its QR lies
entirely inside the first screen, and what that first screen shows decodes to a valid payment code."""

from __future__ import annotations

from tests.admin_ui.test_browser import _shot, _sign_in, browser, server

PHONE = {"width": 360, "height": 740}


def test_the_pay_code_is_on_the_first_screen_of_a_phone(browser, server) -> None:
    from ledger.redemption import codes
    from tests.qr import decode_qr

    context, page = _sign_in(browser, server["base"], "volunteer", PHONE)
    box = page.locator("#qr").bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"], box
    first_screen = page.screenshot()  # the viewport only: what the cashier sees without scrolling
    verified = codes.verify_code(server["books"], decode_qr(first_screen))
    assert verified.wallet_account_id > 0
    _shot(page, "wallet-phone-first-screen")
    context.close()
