"""The wallet app on a 360x740 phone, as a volunteer uses it at the till (Playwright, Debian's Chromium):

- the pay code comes first: its QR lies entirely inside the first screen and decodes to a valid code, and the
  short number under it redeems at the till API;
- a till redemption makes the open wallet show 支付成功 with the shop and the amount within two seconds;
- offline (the context offline after one online visit) the app loads from its service worker and shows a code
  signed on the phone that the till (online) accepts once; a revoked phone's code is refused;
- a refused claim keeps what was typed and says what to fix beside the field;
- with no key and no network, an expired code leaves the screen; without Ed25519 the phone uses P-256.
"""

from __future__ import annotations

import time
import uuid

from playwright.sync_api import expect
from sqlalchemy import select

from tests.admin_ui.test_browser import _shot, _sign_in, browser, server

PHONE = {"width": 360, "height": 740}


def _user_id(books, username: str) -> int:
    from ledger.schema import User

    with books.session(readonly=True) as s:
        return s.scalar(select(User.id).where(User.username == username))


def _token(books, username: str) -> dict[str, str]:
    from ledger.access.identity import load_actor
    from ledger.access.tokens import issue_access_token

    with books.session(readonly=True) as s:
        actor = load_actor(s, _user_id(books, username))
    token, _ = issue_access_token(books, actor)
    return {"Authorization": f"Bearer {token}"}


def _give(books, username: str, beans: int) -> None:
    """Beans from the fund straight to a wallet (the demo's leader has none)."""
    from ledger.access.identity import wallet_account_id
    from ledger.journal.accounts import account_by_code, post
    from ledger.journal.posting import transfer

    with books.session(readonly=True) as s:
        fund, wallet = account_by_code(s, "fund").id, wallet_account_id(s, _user_id(books, username))
    post(books, transfer(f"test:give:{username}:{uuid.uuid4().hex[:8]}", "award", fund, wallet, beans))


def _redeem(server, code: str, amount: int):
    """The till API, as a cashier's till sends it."""
    client = server["app"].test_client()
    return client.post("/api/v1/redemptions", json={"code": code, "amount": amount},
                       headers={**_token(server["books"], "cashier"), "Idempotency-Key": uuid.uuid4().hex})


def test_the_pay_code_is_on_the_first_screen_and_its_number_redeems(browser, server) -> None:
    from ledger.redemption import codes
    from tests.qr import decode_qr

    context, page = _sign_in(browser, server["base"], "volunteer", PHONE)
    box = page.locator("#qr").bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"], box
    first_screen = page.screenshot()  # the viewport only: what the cashier sees without scrolling
    verified = codes.verify_code(server["books"], decode_qr(first_screen))
    assert verified.wallet_account_id > 0
    number = page.get_attribute("#pay-number", "data-number")
    assert page.inner_text("#pay-number").replace(" ", "") == number and len(number) == 16
    assert page.locator("#barcode rect").count() > 10  # JsBarcode drew the number as Code 128
    # the balance is hidden until tapped
    expect(page.locator("#balance-number")).to_be_hidden()
    page.click("#balance-show")
    expect(page.locator("#balance-number")).to_be_visible()
    _shot(page, "wallet-phone-first-screen")
    resp = _redeem(server, page.inner_text("#pay-number"), 3)  # typed by the cashier, with its spaces
    assert resp.status_code == 201, resp.json
    assert _redeem(server, number, 3).json["error"] == "code_already_used"
    context.close()


def test_a_till_payment_shows_on_the_open_wallet_within_two_seconds(browser, server) -> None:
    context, page = _sign_in(browser, server["base"], "volunteer", PHONE)
    with page.expect_response(lambda r: "/radar/events" in r.url):
        pass  # the event stream is open
    code = page.get_attribute("#qr", "data-code")
    before = int(page.get_attribute("#balance", "data-value"))
    resp = _redeem(server, code, 7)
    paid_at = time.monotonic()
    assert resp.status_code == 201, resp.json
    shop = resp.json["merchant"]["name"]
    expect(page.locator("#paid")).to_be_visible(timeout=2_000)
    shown = time.monotonic() - paid_at
    assert shown <= 2.0, shown
    assert page.inner_text("#paid-shop") == shop
    assert "7" in page.inner_text("#paid-amount")
    assert page.inner_text("#paid-left").replace(",", "").find(str(before - 7)) >= 0
    expect(page.locator("#balance")).to_have_attribute("data-value", str(before - 7))
    page.screenshot(path=str(_artifacts() / "wallet-paid.png"))
    page.click("#paid-done")
    expect(page.locator("#paid")).to_be_hidden()
    # the history names the shop, and its running figure is the big number
    page.click("#tabbtn-me")
    first = page.locator("ul.history li").first
    assert shop in first.inner_text()
    assert f"{before - 7:,}" in first.locator(".after").inner_text()
    context.close()


def _artifacts():
    from tests.admin_ui.test_browser import ARTIFACTS

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def test_offline_the_app_opens_from_its_service_worker_with_a_code_the_till_takes(browser, server) -> None:
    from ledger.redemption import codes
    from tests.qr import decode_qr

    books = server["books"]
    context, page = _sign_in(browser, server["base"], "volunteer", PHONE)
    # one online visit: the service worker keeps the shell, the phone registers its key
    page.wait_for_function("() => navigator.serviceWorker.controller !== null", timeout=15_000)
    expect(page.locator("#app")).to_have_attribute("data-phone", "ready", timeout=15_000)
    devices = server["app"].test_client().get("/api/v1/wallet/devices", headers=_token(books, "volunteer")).json
    device = next(d for d in devices if d["status"] == "active")
    assert device["alg"] in ("EdDSA", "ES256")

    context.set_offline(True)
    page.reload()
    expect(page.locator("#qr-offline")).to_be_visible(timeout=10_000)
    expect(page.locator("#offline-note")).to_be_visible()
    assert "网络已断开" in page.inner_text("#offline-note")
    box = page.locator("#qr-offline").bounding_box()
    assert box["y"] + box["height"] <= PHONE["height"], box
    code = decode_qr(page.screenshot())
    assert code == page.get_attribute("#qr-offline", "data-code")
    assert codes.code_typ(code) == codes.OFFLINE_TYP
    _shot(page, "wallet-offline")

    first = _redeem(server, code, 4)  # the till is online
    assert first.status_code == 201 and first.json["method"] == "device_code", first.json
    again = _redeem(server, code, 4)
    assert again.status_code == 409 and again.json["error"] == "code_already_used"

    page.reload()  # still offline: a fresh code from the phone
    expect(page.locator("#qr-offline")).to_be_visible(timeout=10_000)
    fresh = page.get_attribute("#qr-offline", "data-code")
    assert fresh and fresh != code
    client = server["app"].test_client()
    gone = client.delete(f"/api/v1/wallet/devices/{device['id']}", headers=_token(books, "volunteer"))
    assert gone.json["status"] == "revoked"
    refused = _redeem(server, fresh, 4)
    assert refused.status_code == 403 and refused.json["error"] == "device_revoked"
    context.close()


def test_a_refused_claim_keeps_its_fields_and_says_what_to_fix_beside_them(browser, server) -> None:
    context, page = _sign_in(browser, server["base"], "volunteer", PHONE)
    page.goto("/wallet?tab=me")
    form = page.locator("#tip-form")
    form.locator("#description").fill("两个人在撬电动车的锁")
    form.locator("#location").fill("金沙小区 3 栋")
    form.locator("#occurred_at").fill("2099-01-01T10:00")  # in the future: refused
    with page.expect_navigation():
        form.locator("button.primary").click()
    assert page.input_value("#description") == "两个人在撬电动车的锁"
    assert page.input_value("#location") == "金沙小区 3 栋"
    assert page.input_value("#occurred_at") == "2099-01-01T10:00"
    error = page.locator("#tip-occurred_at-error")
    expect(error).to_be_visible()
    assert "晚" in error.inner_text()
    assert page.get_attribute("#occurred_at", "aria-invalid") == "true"
    page.wait_for_function("() => document.activeElement.id === 'occurred_at'")  # the wrong field has the focus
    # the sentence sits beside its field: just under it, on the same screen
    field, sentence = page.locator("#occurred_at").bounding_box(), error.bounding_box()
    assert 0 <= sentence["y"] - (field["y"] + field["height"]) < 40 and sentence["y"] + sentence["height"] <= PHONE["height"]
    _shot(page, "wallet-claim-refused")
    # an empty description: the sentence beside it; the time typed stays
    page.fill("#description", "")
    page.fill("#occurred_at", "2026-11-28T10:00")
    with page.expect_navigation():
        form.locator("button.primary").click()
    expect(page.locator("#tip-description-error")).to_be_visible()
    assert page.input_value("#occurred_at") == "2026-11-28T10:00"
    assert page.input_value("#location") == "金沙小区 3 栋"
    context.close()


def test_an_expired_code_is_never_left_on_screen(browser, server) -> None:
    """Offline on a phone that has no key of its own: when the code runs out, it goes, and the page says why."""
    context = browser.new_context(viewport=PHONE, locale="zh-CN", base_url=server["base"])
    context.route("**/wallet/devices", lambda route: route.abort())  # this phone never gets its key
    page = context.new_page()
    page.clock.install()
    page.goto("/signin")
    page.fill("#username", "volunteer")
    page.fill("#password", "goldbean")
    with page.expect_navigation():
        page.press("#password", "Enter")
    expect(page.locator("#qr")).to_be_visible()
    context.set_offline(True)
    page.clock.run_for(61_000)  # past the code's minute
    expect(page.locator("#qr")).to_be_hidden()
    expect(page.locator("#qr-offline")).to_be_hidden()
    expect(page.locator("#number-box")).to_be_hidden()
    expect(page.locator("#qr-expired")).to_be_visible()
    assert "有网络时打开一次钱包" in page.inner_text("#offline-note")
    assert page.get_attribute("#qr", "data-code") == ""
    page.screenshot(path=str(_artifacts() / "wallet-expired-offline.png"))
    context.set_offline(False)
    page.clock.run_for(2_000)
    expect(page.locator("#qr")).to_be_visible(timeout=5_000)  # back online: a fresh code at once
    assert page.get_attribute("#qr", "data-code")
    expect(page.locator("#offline-note")).to_be_hidden()
    context.close()


def test_a_browser_without_ed25519_falls_back_to_p256(browser, server) -> None:
    """Where WebCrypto lacks Ed25519, the phone makes an ECDSA P-256 key; its offline codes pay as well."""
    context = browser.new_context(viewport=PHONE, locale="zh-CN", base_url=server["base"])
    context.add_init_script("""(() => {
      const subtle = crypto.subtle, generate = subtle.generateKey.bind(subtle);
      subtle.generateKey = (algo, ...rest) => (algo && algo.name === "Ed25519")
        ? Promise.reject(new DOMException("Unrecognized name", "NotSupportedError")) : generate(algo, ...rest);
    })();""")
    page = context.new_page()
    page.goto("/signin")
    page.fill("#username", "leader")  # a volunteer of their own, with a wallet
    page.fill("#password", "goldbean")
    with page.expect_navigation():
        page.press("#password", "Enter")
    expect(page.locator("#app")).to_have_attribute("data-phone", "ready", timeout=15_000)
    devices = server["app"].test_client().get("/api/v1/wallet/devices", headers=_token(server["books"], "leader")).json
    assert [d["alg"] for d in devices] == ["ES256"]
    context.set_offline(True)
    page.evaluate("() => window.dispatchEvent(new Event('offline'))")
    expect(page.locator("#qr-offline")).to_be_visible(timeout=10_000)
    code = page.get_attribute("#qr-offline", "data-code")
    _give(server["books"], "leader", 5)
    paid = _redeem(server, code, 2)
    assert paid.status_code == 201 and paid.json["method"] == "device_code", paid.json
    # the enlarged code, on a white screen
    page.click("#qr-zoom")
    expect(page.locator("#zoom")).to_be_visible()
    expect(page.locator("#zoom-code canvas")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#zoom")).to_be_hidden()
    context.close()
