"""End to end in a real browser: Playwright driving Debian's Chromium (headless) against the app served
by werkzeug on 127.0.0.1 with the seeded demo district.

1. A volunteer signs in and sees a payment QR that decodes (zxing-cpp on a screenshot) to a valid code.
2. A cashier's till page reads that code from the camera (Chromium's fake camera fed with a Y4M video of
   the QR, decoded by jsQR in the page), shows the customer's masked name and balance, and takes the payment
   (收款成功, the camera still on); the volunteer's balance drops.
3. An officer verifies a claim; the volunteer's balance rises.
4. The English switch changes the page.

Screenshots of each step go to ``test-artifacts/browser/``. Without Chromium the module is skipped, except in
CI (``GOLDBEAN_REQUIRE_POSTGRES=1``) where that is a failure.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
JSQR = ROOT / "admin_ui" / "static" / "vendor" / "node_modules" / "jsqr" / "dist" / "jsQR.js"
IN_CI = os.environ.get("GOLDBEAN_REQUIRE_POSTGRES") == "1"
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
Y4M_W, Y4M_H = 640, 480

pytestmark = pytest.mark.slow


def _require(condition: bool, reason: str) -> None:
    if condition:
        return
    if IN_CI:
        pytest.fail(f"browser tests must run in CI but {reason}")
    pytest.skip(f"browser tests skipped: {reason}")


def write_y4m(png: bytes, path: Path, frames: int = 6) -> None:
    """A YUV4MPEG2 video (4:2:0) showing the QR image on white, for Chromium's fake camera."""
    from PIL import Image

    qr = Image.open(io.BytesIO(png)).convert("L")
    side = min(Y4M_W, Y4M_H) - 20
    qr = qr.resize((side, side), Image.NEAREST)
    canvas = Image.new("L", (Y4M_W, Y4M_H), 255)
    canvas.paste(qr, ((Y4M_W - side) // 2, (Y4M_H - side) // 2))
    y, cb, cr = canvas.convert("YCbCr").split()
    half = (Y4M_W // 2, Y4M_H // 2)
    plane = y.tobytes() + cb.resize(half).tobytes() + cr.resize(half).tobytes()
    with open(path, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{Y4M_W} H{Y4M_H} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            fh.write(b"FRAME\n" + plane)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    from werkzeug.serving import make_server

    from doors import books_of
    from goldbean.app import create_app
    from goldbean.migrate import upgrade
    from goldbean.seed import seed_demo

    folder = tmp_path_factory.mktemp("browser")
    url = f"sqlite:///{folder / 'goldbean.db'}"
    upgrade(url)
    app = create_app({"DATABASE_URL": url, "INSTANCE_PATH": str(folder / "instance"), "SECRET_KEY": "e2e",
                      "SESSION_COOKIE_SECURE": False, "DEMO": True})
    books = books_of(app)
    seed_demo(books)
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield {"base": f"http://127.0.0.1:{httpd.server_port}", "books": books, "folder": folder, "app": app}
    finally:
        httpd.shutdown()
        thread.join(5)
        books.engine.dispose()


@pytest.fixture(scope="module")
def browser(server: dict) -> Iterator[object]:
    _require(CHROMIUM is not None, "chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    camera = server["folder"] / "camera.y4m"
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS + [
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={camera}"])
        try:
            yield b
        finally:
            b.close()


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _sign_in(browser, base: str, username: str, viewport: dict | None = None):
    context = browser.new_context(viewport=viewport or {"width": 1000, "height": 900}, locale="zh-CN",
                                  permissions=["camera"], base_url=base)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto("/signin")
    # keyboard only: into the username field, Tab to the password, Enter signs in
    page.focus("#username")
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type("goldbean")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.wait_for_load_state()
    return context, page


def _balance(page) -> int:
    return int(page.get_attribute("#balance", "data-value"))


PAGES = (("volunteer", "/wallet", "wallet", {"width": 390, "height": 844}),
         ("cashier", "/till", "till", {"width": 1024, "height": 900}),
         ("officer", "/officer", "officer", None), ("officer", "/officer/volunteers", "volunteers", None),
         ("officer", "/officer/volunteers/{volunteer}", "volunteer", None),
         ("fund", "/fund", "fund", None), ("admin", "/admin", "admin", None),
         ("auditor", "/auditor", "auditor", None), ("officer", "/dashboard", "dashboard", None))


def test_every_page_renders_without_console_errors(browser, server) -> None:
    """Each page as its role: no script errors and no CSP violations; a screenshot of each for docs/ui.md."""
    from sqlalchemy import select

    from ledger.schema import User

    with server["books"].session(readonly=True) as s:
        volunteer = s.scalar(select(User.id).where(User.username == "volunteer"))
    out = ARTIFACTS / "pages"
    out.mkdir(parents=True, exist_ok=True)
    anon = browser.new_context(base_url=server["base"])
    signin = anon.new_page()
    signin.goto("/signin")
    signin.screenshot(path=str(out / "signin.png"), full_page=True)
    anon.close()
    for username, path, name, viewport in PAGES:
        ctx, page = _sign_in(browser, server["base"], username, viewport)
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))
        page.goto(path.format(volunteer=volunteer))
        page.wait_for_load_state("networkidle")
        assert page.locator("h1").count() == 1
        page.screenshot(path=str(out / f"{name}.png"), full_page=True)
        assert not problems, (path, problems)
        ctx.close()


def test_wallet_qr_till_camera_officer_and_english(browser, server) -> None:
    from ledger.redemption import codes
    from tests.qr import decode_qr

    base, books = server["base"], server["books"]
    # 1. the volunteer's wallet shows a QR that decodes to a valid payment code
    vctx, wallet = _sign_in(browser, base, "volunteer", {"width": 390, "height": 844})
    assert wallet.url.endswith("/wallet")
    assert wallet.inner_text("h1") == "我的钱包"
    _shot(wallet, "1-wallet")
    png = wallet.locator("#qr").screenshot()
    code = decode_qr(png)
    assert code == wallet.get_attribute("#qr", "data-code")
    assert codes.verify_code(books, code).typ == codes.WALLET_TYP
    first = int(wallet.inner_text("#countdown"))
    # the countdown script runs: wait for it to tick (no fixed sleep), then check the value
    wallet.wait_for_function("first => Number(document.querySelector('#countdown').textContent) < first", arg=first,
                             timeout=10_000)
    assert 0 < int(wallet.inner_text("#countdown")) < first, "the countdown script does not run"
    start = _balance(wallet)

    # 2. the cashier's till reads that code from the (fake) camera and redeems it
    _require(JSQR.exists(), f"{JSQR.relative_to(ROOT)} is missing (make install runs npm install)")
    write_y4m(codes.qr_png(code, box_size=4, border=4), server["folder"] / "camera.y4m")
    cctx, till = _sign_in(browser, base, "cashier", {"width": 1024, "height": 1100})
    assert till.url.endswith("/till")
    till.click("#camera-start")
    from playwright.sync_api import expect

    expect(till.locator("#code")).to_have_value(re.compile(r"^ey.{100,}$"), timeout=20_000)  # jsQR read it
    assert till.input_value("#code") == code
    # before confirming: who is paying and what they have
    expect(till.locator("#customer-name")).to_have_text("赵**者")
    expect(till.locator("#customer-beans")).to_have_attribute("data-value", str(start))
    _shot(till, "2-till-scanned")
    # the scan moved the focus to the amount: type it and press Enter, no mouse needed
    till.keyboard.type("5")
    assert till.input_value("#amount") == "5"
    expect(till.locator("#redeem")).to_have_text("确认收款 5 金豆")
    till.keyboard.press("Enter")
    expect(till.locator("#paid")).to_be_visible()
    expect(till.locator("#paid-title")).to_have_text("收款成功")
    assert till.inner_text("#paid-amount") == "5" and till.inner_text("#paid-customer") == "顾客：赵**者"
    assert till.evaluate("document.getElementById('camera').srcObject.active"), "the camera stays on"
    _shot(till, "3-till-receipt")
    # the open wallet page notices by itself (it polls /wallet/status)
    expect(wallet.locator("#balance")).to_have_attribute("data-value", str(start - 5), timeout=10_000)
    _shot(wallet, "4-wallet-after-redeem")

    # 3. an officer verifies the volunteer's waiting claim; the balance rises
    octx, officer = _sign_in(browser, base, "officer2")
    assert officer.url.endswith("/officer")
    claim = officer.locator("section[id^=claim-]").first
    claim_id = re.sub(r"\D", "", claim.get_attribute("id"))
    _shot(officer, "5-officer-queue")
    officer.fill(f"#vreason-{claim_id}", "巡逻记录已核对")
    if officer.locator(f"#tier-{claim_id}-low").count():  # a tip: its value is chosen, never assumed
        officer.check(f"#tier-{claim_id}-low")
    officer.click(f"#verify-{claim_id}")
    officer.wait_for_selector(".flash.ok")
    assert f"第 {claim_id} 号申报已核实" in officer.inner_text(".flash.ok")
    _shot(officer, "6-officer-verified")
    wallet.reload()
    assert _balance(wallet) > start - 5
    _shot(wallet, "7-wallet-after-award")

    # 4. the English switch
    wallet.click("#lang-en")
    wallet.wait_for_load_state()
    assert wallet.inner_text("h1") == "My wallet"
    assert wallet.get_attribute("html", "lang") == "en"
    _shot(wallet, "8-wallet-english")
    for ctx in (vctx, cctx, octx):
        ctx.close()
