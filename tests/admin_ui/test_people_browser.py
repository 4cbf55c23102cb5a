"""Recruitment in a real browser on a phone (360x740): a resident signs up from the front page (answering the
plain-words sum), the community's officer approves on a tablet, and the resident signs in with the mobile
number and lands on the wallet. Uses the server and browser of ``test_browser``; screenshots go to
``test-artifacts/browser/``."""

from __future__ import annotations

import re

from ledger.schema import SignupChallenge
from tests.admin_ui.test_browser import _shot, _sign_in, browser, server

PHONE = {"width": 360, "height": 740}


def _answer(books, challenge_id: str) -> str:
    with books.session(readonly=True) as s:
        return s.get(SignupChallenge, challenge_id).answer


def test_sign_up_on_a_phone_approval_and_first_sign_in(browser, server) -> None:
    context = browser.new_context(viewport=PHONE, locale="zh-CN", base_url=server["base"])
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto("/")
    page.click("text=报名当志愿者")
    page.fill("#j-name", "王阿姨")
    page.fill("#j-phone", "13955556666")
    page.select_option("#j-community", label="金沙社区")
    page.fill("#j-birth", "1958-03-01")
    page.fill("#j-password", "wang-ayi-2026")
    challenge_id = page.get_attribute("input[name=challenge_id]", "value")
    question = page.text_content("label[for=j-answer]")
    assert re.search(r"[一二三四五六七八九]加[一二三四五六七八九]等于几？", question)
    page.fill("#j-answer", _answer(server["books"], challenge_id))
    page.check("input[name=consent]")
    _shot(page, "people-phone-signup")
    send = page.locator("text=提交报名")
    assert send.bounding_box()["width"] >= 48 and send.bounding_box()["height"] >= 48
    send.click()
    page.wait_for_selector("text=报名已提交")
    _shot(page, "people-phone-sent")
    context.close()

    office, desk = _sign_in(browser, server["base"], "officer", {"width": 1024, "height": 768})
    desk.goto("/signups")
    card = desk.locator("section.card", has_text="王阿姨")
    card.locator("button.ok").click()
    desk.wait_for_selector("text=现在可以用手机号登录了")
    office.close()

    context = browser.new_context(viewport=PHONE, locale="zh-CN", base_url=server["base"])
    page = context.new_page()
    page.goto("/signin")
    page.fill("#username", "13955556666")
    page.fill("#password", "wang-ayi-2026")
    with page.expect_navigation():
        page.click("#sign-in")
    assert page.url.endswith("/wallet")
    _shot(page, "people-phone-first-sign-in")
    context.close()
