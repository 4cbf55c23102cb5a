"""axe-core on every page, in Chinese and in English (and in 长辈模式): no serious or critical finding.

axe-core comes from npm through ``make install`` (``.venv/npm/node_modules/axe-core``, test-only, never served)
and is injected by Playwright as an init script (the pages' CSP allows no inline script; an init script is not
one). The pages are the ones the other browser tests walk (``test_browser.PAGES``), the public pages, the other
areas' landing pages, and the staff steps that only appear after a press: a till refund, a confirmation page.

``senior``: the same walk with 长辈模式 on (the ``gb_elder`` cookie naming the signed-in user, as the wallet's
switch sets it, which marks ``<html class="elder">``). Until 长辈模式 is in the pages that walk would repeat the
plain one, so it is skipped, saying so; it runs by itself once the pages know the cookie.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.admin_ui.test_browser import CHROMIUM, ROOT, _require, browser, server

__all__ = ["browser", "server"]
AXE = ROOT / ".venv" / "npm" / "node_modules" / "axe-core" / "axe.min.js"
REPORTS = ROOT / "test-artifacts" / "axe"
VIEWPORTS = {"phone": {"width": 360, "height": 740}, "tablet": {"width": 1024, "height": 768}}

# (role, path, viewport): every page the browser tests open, and the rest of each role's pages
PAGES = (
    (None, "/signin", "phone"), (None, "/join", "phone"), (None, "/privacy", "phone"), (None, "/reset", "phone"),
    ("volunteer", "/wallet", "phone"), ("volunteer", "/patrols", "phone"), ("volunteer", "/radar", "phone"),
    ("volunteer", "/surveys", "phone"), ("volunteer", "/account/password", "phone"),
    ("cashier", "/till", "tablet"), ("cashier", "/till/redemptions/{redemption}/refund", "tablet"),
    ("officer", "/officer", "phone"), ("officer", "/officer/volunteers", "phone"),
    ("officer", "/officer/volunteers?q=139", "phone"), ("officer", "/officer/volunteers/{volunteer}", "phone"),
    ("officer", "/signups", "phone"), ("officer", "/patrols/desk", "tablet"), ("officer", "/radar/desk", "tablet"),
    ("officer", "/dashboard", "phone"),
    ("fund", "/fund", "tablet"), ("admin", "/admin", "tablet"), ("auditor", "/auditor", "tablet"),
)
# pages reached by pressing something: (role, the page, the button pressed there)
STEPS = (("admin", "/admin", "#disable-volunteer"), ("fund", "/fund", "#settle-month"))
IMPACTS = ("serious", "critical")


def _ids(server: dict) -> dict:
    """A volunteer to open, and a completed sale at the cashier's shop to refund."""
    if "ids" in server:
        return server["ids"]
    from sqlalchemy import select

    from ledger import redemption
    from ledger.access.identity import load_actor, wallet_account_id
    from ledger.access.policy import default_till_merchant
    from ledger.redemption import TillContext, codes
    from ledger.schema import User

    books = server["books"]
    with books.session(readonly=True) as s:
        volunteer = s.scalar(select(User.id).where(User.username == "volunteer"))
        wallet = wallet_account_id(s, volunteer)
        cashier = load_actor(s, s.scalar(select(User.id).where(User.username == "cashier")))
    sale = redemption.redeem(books, TillContext(default_till_merchant(cashier), cashier),
                             code=codes.issue_wallet_code(books, wallet).code, amount=3, idempotency_key="axe-sale")
    server["ids"] = {"volunteer": volunteer, "redemption": sale.json()["redemption_id"]}
    return server["ids"]


def _context(browser, server: dict, role: str | None, viewport: str, lang: str, senior: bool):
    context = browser.new_context(viewport=VIEWPORTS[viewport], locale="zh-CN", base_url=server["base"])
    context.add_init_script(path=str(AXE))
    page = context.new_page()
    page.set_default_timeout(15_000)
    if role is not None:
        page.goto("/signin")
        page.fill("#username", role)
        page.fill("#password", "goldbean")
        with page.expect_navigation():
            page.press("#password", "Enter")
        if senior:
            from sqlalchemy import select

            from ledger.schema import User

            with server["books"].session(readonly=True) as s:
                uid = s.scalar(select(User.id).where(User.username == role))
            context.add_cookies([{"name": "gb_elder", "value": str(uid), "url": server["base"]}])
    if lang == "en":
        page.goto("/signin" if role is None else "/")
        page.click("#lang-en")
        page.wait_for_load_state()
    return context, page


def _senior_mode_in_pages(browser, server: dict) -> bool:
    """Whether the pages know 长辈模式: the volunteer's wallet, with the cookie set, marks ``<html class="elder">``."""
    if "senior" not in server:
        context, page = _context(browser, server, "volunteer", "phone", "zh", True)
        page.goto("/wallet")
        server["senior"] = bool(page.evaluate("document.documentElement.classList.contains('elder')"))
        context.close()
    return server["senior"]


def _findings(page) -> list[dict]:
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {resultTypes: ['violations']});
        return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' :: ' + n.html.slice(0, 160))}));
    }""")
    return [v for v in result if v["impact"] in IMPACTS]


@pytest.mark.parametrize("senior", [False, True], ids=["plain", "senior"])
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_no_serious_or_critical_accessibility_finding_on_any_page(browser, server, lang: str, senior: bool) -> None:
    _require(CHROMIUM is not None, "chromium is not installed")
    _require(AXE.exists(), f"{AXE.relative_to(ROOT)} is missing (make install runs npm install)")
    if senior:  # else the senior walk would only repeat the plain one
        assert _senior_mode_in_pages(browser, server), "长辈模式 is gone: no html.elder with the gb_elder cookie"
    ids = _ids(server)
    found: dict[str, list[dict]] = {}
    by_role: dict[tuple, list[str]] = {}
    for role, path, viewport in PAGES:
        by_role.setdefault((role, viewport), []).append(path.format(**ids))
    for (role, viewport), paths in by_role.items():
        context, page = _context(browser, server, role, viewport, lang, senior)
        for path in paths:
            page.goto(path)
            page.wait_for_load_state()
            assert page.locator("h1").count() >= 1, path
            if bad := _findings(page):
                found[f"{role} {path}"] = bad
        for step_role, start, button in STEPS:
            if step_role == role:
                page.goto(start)
                with page.expect_navigation():
                    page.click(button)
                assert page.locator("#confirm-form, #confirm-refusal").count() == 1, start
                if bad := _findings(page):
                    found[f"{role} {start} → {button}"] = bad
        context.close()
    REPORTS.mkdir(parents=True, exist_ok=True)
    name = f"axe-{lang}{'-senior' if senior else ''}.json"
    Path(REPORTS / name).write_text(json.dumps(found, ensure_ascii=False, indent=1))
    assert not found, json.dumps(found, ensure_ascii=False, indent=1)
