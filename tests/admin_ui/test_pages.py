"""The web pages through Flask's test client: sign-in and landing, roles on every page, the server-side
session (replayed cookie after sign-out, disabled users), CSRF on every state-changing form, security
headers, the language switch, and the wallet/till/officer flows calling the ledger's use cases."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from doors import books_of
from ledger.access.identity import wallet_account_id
from ledger.redemption import codes
from ledger.schema import Account, Award, Card, Claim, Redemption, Transfer, User, WebSession

from .conftest import csrf_of, sign_in

LANDINGS = {"volunteer": "/wallet", "cashier": "/till", "officer": "/officer", "fund": "/fund",
            "admin": "/admin", "auditor": "/auditor"}
PAGES = ["/wallet", "/till", "/officer", "/officer/volunteers", "/fund", "/admin", "/auditor", "/dashboard"]
ALLOWED = {  # who may open which page (the demo users)
    "volunteer": {"/wallet"},
    "cashier": {"/till"},
    "officer": {"/officer", "/officer/volunteers", "/dashboard"},
    "fund": {"/fund", "/dashboard"},
    "admin": {"/admin", "/auditor", "/dashboard"},
    "auditor": {"/auditor", "/dashboard"},
}


def _user_id(app, username: str) -> int:
    with books_of(app).session(readonly=True) as s:
        return s.scalar(select(User.id).where(User.username == username))


def _balance(app, username: str) -> int:
    books = books_of(app)
    with books.session(readonly=True) as s:
        acc = s.get(Account, wallet_account_id(s, _user_id(app, username)))
        return acc.credits_posted - acc.debits_posted - acc.debits_pending


@pytest.mark.parametrize("username", sorted(LANDINGS))
def test_each_role_lands_on_its_page_and_only_opens_its_pages(signed_in, username: str) -> None:
    client = signed_in(username)
    assert client.get("/").headers["Location"] == LANDINGS[username]
    for page in PAGES:
        status = client.get(page).status_code
        assert status == (200 if page in ALLOWED[username] else 403), (username, page, status)


def test_signed_out_visitors_are_sent_to_sign_in(seeded) -> None:
    client = seeded.test_client()
    for page in PAGES:
        resp = client.get(page)
        assert resp.status_code == 302 and resp.headers["Location"].startswith("/signin"), page


def test_wrong_password_is_refused_with_a_chinese_sentence(seeded) -> None:
    resp = sign_in(seeded.test_client(), "volunteer", "wrong")
    assert resp.status_code == 401
    assert "用户名或密码错误" in resp.text


def test_sign_in_next_only_goes_to_our_own_pages(seeded) -> None:
    client = seeded.test_client()
    page = client.get("/signin?next=//evil.example/")
    assert 'name="next" value="//evil' not in page.text
    resp = client.post("/signin", data={"username": "volunteer", "password": "goldbean",
                                        "csrf_token": csrf_of(page.text), "next": "//evil.example/"})
    assert resp.headers["Location"] == "/wallet"


NOT_OURS = ["//evil.example/", "/\t/evil.example/x", "/%09/evil.example/x", "/\r\n/evil.example", "/\\evil.example",
            "\\\\evil.example", "https://evil.example/", "/\nSet-Cookie: x=1", "javascript:alert(1)", " //evil.example",
            "/\x00/evil.example", "http:/evil.example"]


@pytest.mark.parametrize("target", NOT_OURS)
def test_sign_in_and_language_switch_never_leave_the_site(seeded, target) -> None:
    """Whatever ``next`` holds, once a browser has normalised it (tabs and line breaks dropped, ``\\`` read
    as ``/``), the redirect stays on this site; a line break is never a 500."""
    from urllib.parse import unquote

    client = seeded.test_client()
    page = client.get("/signin", query_string={"next": unquote(target)})
    assert page.status_code == 200
    resp = client.post("/signin", data={"username": "volunteer", "password": "goldbean",
                                        "csrf_token": csrf_of(page.text), "next": unquote(target)})
    assert resp.status_code == 302 and resp.headers["Location"] == "/wallet"
    page = client.get("/wallet")
    resp = client.post("/lang", data={"lang": "en", "csrf_token": csrf_of(page.text), "next": unquote(target)})
    assert resp.status_code == 302 and resp.headers["Location"] == "/"


def test_next_keeps_our_own_path_and_query(seeded) -> None:
    client = seeded.test_client()
    page = client.get("/signin")
    resp = client.post("/signin", data={"username": "volunteer", "password": "goldbean",
                                        "csrf_token": csrf_of(page.text), "next": "/wallet?tab=history#top"})
    assert resp.headers["Location"] == "/wallet?tab=history#top"


def test_session_cookie_flags_and_new_id_at_sign_in(seeded) -> None:
    client = seeded.test_client()
    first = client.get("/signin")
    before = client.get_cookie("gb_session").value
    assert "HttpOnly" in first.headers["Set-Cookie"] and "SameSite=Lax" in first.headers["Set-Cookie"]
    resp = client.post("/signin", data={"username": "volunteer", "password": "goldbean",
                                        "csrf_token": csrf_of(first.text)})
    after = client.get_cookie("gb_session").value
    assert after != before, "sign-in must not keep the id the browser had before (session fixation)"
    assert "HttpOnly" in resp.headers["Set-Cookie"]
    # the table keeps a hash of the id, never the id itself
    with books_of(seeded).session(readonly=True) as s:
        stored = s.scalars(select(WebSession.token_hash)).all()
    assert after not in stored and len(stored) >= 1


def test_secure_cookie_when_configured(app_config, tmp_path) -> None:
    from goldbean.app import create_app

    secure_app = create_app({**app_config, "SESSION_COOKIE_SECURE": True})
    resp = secure_app.test_client().get("/signin")
    assert "Secure" in resp.headers["Set-Cookie"]
    books_of(secure_app).engine.dispose()


def test_a_session_cookie_replayed_after_sign_out_is_refused(signed_in, seeded) -> None:
    client = signed_in("volunteer")
    page = client.get("/wallet")
    token, cookie = csrf_of(page.text), client.get_cookie("gb_session").value
    resp = client.post("/signout", data={"csrf_token": token})
    assert resp.status_code == 302
    thief = seeded.test_client()
    thief.set_cookie("gb_session", cookie)
    assert thief.get("/wallet").headers["Location"].startswith("/signin")
    before = _count(seeded, Claim)
    resp = thief.post("/wallet/claims", data={"csrf_token": token, "kind": "tip", "category": "theft",
                                              "description": "x", "occurred_at": "2026-11-27T10:00"})
    assert resp.status_code == 400 and _count(seeded, Claim) == before
    assert thief.post("/wallet/code", headers={"X-CSRF-Token": token}).status_code == 400


def test_disabling_a_user_ends_their_sessions(signed_in, seeded) -> None:
    volunteer = signed_in("volunteer")
    assert volunteer.get("/wallet").status_code == 200
    admin = signed_in("admin")
    page = admin.get("/admin")
    uid = _user_id(seeded, "volunteer")
    resp = admin.post(f"/admin/users/{uid}/active", data={"csrf_token": csrf_of(page.text), "active": "0"})
    assert resp.status_code == 302
    assert volunteer.get("/wallet").headers["Location"].startswith("/signin")
    assert sign_in(seeded.test_client(), "volunteer").status_code == 401


def _count(app, model) -> int:
    with books_of(app).session(readonly=True) as s:
        return s.scalar(select(func.count()).select_from(model))


def _fingerprint(app) -> tuple:
    with books_of(app).session(readonly=True) as s:
        return (s.scalar(select(func.count()).select_from(Transfer)), s.scalar(select(func.count()).select_from(Claim)),
                s.scalar(select(func.count()).select_from(Award)), s.scalar(select(func.count()).select_from(Card)),
                s.scalar(select(func.count()).select_from(Redemption)),
                tuple(s.execute(select(Claim.id, Claim.status).order_by(Claim.id)).all()),
                tuple(s.execute(select(Award.id, Award.status).order_by(Award.id)).all()),
                tuple(s.execute(select(Card.id, Card.status).order_by(Card.id)).all()),
                tuple(s.execute(select(User.id, User.active).order_by(User.id)).all()),
                s.scalar(select(func.count()).select_from(WebSession).where(WebSession.user_id.is_not(None))))


def _post_routes(app) -> list[str]:
    return sorted({r.rule for r in app.url_map.iter_rules()
                   if "POST" in r.methods and not r.rule.startswith("/api/")})


def test_every_state_changing_form_refuses_a_missing_or_wrong_csrf_token(signed_in, seeded) -> None:
    books = books_of(seeded)
    with books.session(readonly=True) as s:
        claim = s.scalar(select(Claim.id).where(Claim.status == "submitted"))
        award = s.scalar(select(Award.id).where(Award.status == "pending_approval"))
        volunteer = s.scalar(select(User.id).where(User.username == "volunteer"))
        wallet = wallet_account_id(s, volunteer)
    from ledger import redemption

    card = redemption.issue_card(books, volunteer, "test", "1234")["card"]["id"]
    code = codes.issue_wallet_code(books, wallet).code
    ids = {"claim_id": claim, "award_id": award, "user_id": volunteer, "card_id": card, "redemption_id": 1,
           "survey_id": 1, "signup_id": 1, "shift_id": 1, "post_id": 1, "notice_id": 1, "answer_id": 1,
           "report_id": 1, "erasure_id": 1, "device_id": 1}
    form = {"kind": "tip", "category": "theft", "description": "seen", "occurred_at": "2026-11-27T10:00",
            "reason": "ok", "tier": "low", "code": code, "amount": "5", "volunteer_id": str(volunteer),
            "org_unit_id": "1", "reference": "r", "donor": "d", "period": "2026-10", "purpose": "wallet",
            "active": "0", "username": "volunteer", "password": "goldbean", "lang": "en", "sale_key": "k1"}
    routes = _post_routes(seeded)
    assert len(routes) >= 18, routes
    clients = {name: signed_in(name) for name in ("volunteer", "cashier", "officer2", "fund", "admin", "auditor")}
    for client in clients.values():
        client.get("/")
    before = _fingerprint(seeded)
    for rule in routes:
        url = re.sub(r"<int:(\w+)>", lambda m: str(ids[m.group(1)]), rule)
        for client in clients.values():
            for token in (None, "wrong-token"):
                data = dict(form)
                if token:
                    data["csrf_token"] = token
                resp = client.post(url, data=data)
                assert resp.status_code == 400, (rule, token, resp.status_code)
        assert _fingerprint(seeded) == before, rule
    # and the same form with the right token does go through (so the refusal above was the token's)
    officer = clients["officer2"]
    page = officer.get("/officer")
    officer.post(f"/officer/claims/{claim}/reject", data={"csrf_token": csrf_of(page.text), "reason": "dup"})
    assert _fingerprint(seeded) != before


def test_security_headers_on_pages(seeded) -> None:
    resp = seeded.test_client().get("/signin")
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"] == "same-origin"
    assert "<script>" not in resp.text and " style=" not in resp.text


def test_html_errors_stay_html_and_api_errors_stay_json(signed_in, seeded) -> None:
    client = signed_in("volunteer")
    page = client.get("/officer")
    assert page.status_code == 403 and page.mimetype == "text/html" and "您的角色不能进行此操作" in page.text
    assert client.get("/no-such-page").mimetype == "text/html"
    api = client.get("/api/v1/wallet")
    assert api.status_code == 401 and api.is_json


def test_chinese_by_default_and_the_english_switch(signed_in) -> None:
    client = signed_in("volunteer")
    page = client.get("/wallet")
    assert "我的钱包" in page.text and 'lang="zh-CN"' in page.text
    client.post("/lang", data={"lang": "en", "csrf_token": csrf_of(page.text), "next": "/wallet"})
    page = client.get("/wallet")
    assert "My wallet" in page.text and "我的钱包" not in page.text and 'lang="en"' in page.text


def test_wallet_page_code_endpoint_and_claim(signed_in, seeded) -> None:
    client = signed_in("volunteer")
    page = client.get("/wallet")
    assert page.status_code == 200
    code = re.search(r'data-code="([^"]+)"', page.text).group(1)
    assert codes.verify_code(books_of(seeded), code).typ == codes.WALLET_TYP
    fresh = client.post("/wallet/code", headers={"X-CSRF-Token": csrf_of(page.text)})
    assert fresh.status_code == 200 and fresh.json["expires_in"] == 60 and fresh.json["code"] != code
    before = _count(seeded, Claim)
    resp = client.post("/wallet/claims", data={"csrf_token": csrf_of(page.text), "kind": "tip", "category": "theft",
                                               "description": "车棚有人撬锁", "occurred_at": "2026-11-27T16:30"})
    assert resp.status_code == 302 and _count(seeded, Claim) == before + 1
    assert "申报已提交" in client.get("/wallet").text


def _redeem(client, code: str, amount: str, **extra):
    page = client.get("/till")
    sale_key = re.search(r'name="sale_key" value="([^"]+)"', page.text).group(1)
    return client.post("/till/redeem", data={"csrf_token": csrf_of(page.text), "code": code, "amount": amount,
                                             "sale_key": sale_key, **extra})


def test_till_redeems_a_wallet_code_and_explains_refusals(signed_in, seeded) -> None:
    books = books_of(seeded)
    volunteer = signed_in("volunteer")
    code = re.search(r'data-code="([^"]+)"', volunteer.get("/wallet").text).group(1)
    before = _balance(seeded, "volunteer")
    cashier = signed_in("cashier")
    resp = _redeem(cashier, code, "7")
    assert resp.status_code == 201 and "支付成功" in resp.text
    assert _balance(seeded, "volunteer") == before - 7
    again = _redeem(cashier, code, "7")
    assert again.status_code == 409 and "这个付款码已经用过了" in again.text
    fresh = codes.issue_wallet_code(books, wallet_account_id_of(seeded, "volunteer")).code
    too_much = _redeem(cashier, fresh, str(before + 1000))
    assert "金豆不足" in too_much.text and _balance(seeded, "volunteer") == before - 7
    assert _redeem(cashier, "garbage", "1").status_code == 422


def wallet_account_id_of(app, username: str) -> int:
    with books_of(app).session(readonly=True) as s:
        return wallet_account_id(s, _user_id(app, username))


def test_till_card_needs_the_pin(signed_in, seeded) -> None:
    from ledger import redemption

    card = redemption.issue_card(books_of(seeded), _user_id(seeded, "volunteer"), "test", "2468")
    cashier = signed_in("cashier")
    before = _balance(seeded, "volunteer")
    no_pin = _redeem(cashier, card["code"], "3")
    assert "请顾客在键盘上输入密码" in no_pin.text and 'id="pin-block" class=""' in no_pin.text
    wrong = _redeem(cashier, card["code"], "3", pin="0000")
    assert "密码错误" in wrong.text
    ok = _redeem(cashier, card["code"], "3", pin="2468")
    assert ok.status_code == 201 and _balance(seeded, "volunteer") == before - 3


def test_till_refund_and_takings(signed_in, seeded) -> None:
    books = books_of(seeded)
    cashier = signed_in("cashier")
    before = _balance(seeded, "volunteer")
    _redeem(cashier, codes.issue_wallet_code(books, wallet_account_id_of(seeded, "volunteer")).code, "10")
    page = cashier.get("/till")
    red_id = int(re.search(r'/till/redemptions/(\d+)/refund', page.text).group(1))
    refund_key = re.search(r'name="refund_key" value="([^"]+)"', page.text).group(1)
    resp = cashier.post(f"/till/redemptions/{red_id}/refund",
                        data={"csrf_token": csrf_of(page.text), "amount": "4", "refund_key": refund_key})
    assert resp.status_code == 302
    assert _balance(seeded, "volunteer") == before - 6
    assert "已退还 4 金豆" in cashier.get("/till").text


def test_officer_verifies_a_claim_and_the_balance_rises(signed_in, seeded) -> None:
    with books_of(seeded).session(readonly=True) as s:
        claim = s.scalar(select(Claim).where(Claim.status == "submitted"))
        volunteer = s.get(User, claim.volunteer_id).username
    before = _balance(seeded, volunteer)
    officer = signed_in("officer2")
    page = officer.get("/officer")
    assert f'id="claim-{claim.id}"' in page.text
    resp = officer.post(f"/officer/claims/{claim.id}/verify", data={"csrf_token": csrf_of(page.text), "reason": "ok"})
    assert resp.status_code == 302
    assert _balance(seeded, volunteer) > before
    assert "已核实" in officer.get("/officer").text


def test_officer_out_of_scope_is_refused_by_the_use_case(signed_in, seeded) -> None:
    """An officer of another street sees no claims of 鼓楼 and cannot verify one by posting its id."""
    from ledger.access.identity import create_user_in, grant_role_in
    from ledger.schema import OrgUnit

    books = books_of(seeded)

    def work(s):
        other = create_user_in(s, "officer_qy", "goldbean", "青云民警")
        street = s.scalar(select(OrgUnit.id).where(OrgUnit.code == "panlong.qingyun"))
        grant_role_in(s, other.id, "officer", street)
        return s.scalar(select(Claim.id).where(Claim.status == "submitted"))

    claim = books.run(work)
    client = signed_in("officer_qy")
    page = client.get("/officer")
    assert f'id="claim-{claim}"' not in page.text
    before = _fingerprint(seeded)
    resp = client.post(f"/officer/claims/{claim}/verify", data={"csrf_token": csrf_of(page.text), "reason": "x"})
    assert resp.status_code == 302 and _fingerprint(seeded) == before
    assert "这属于您不负责的社区" in client.get("/officer").text


def test_fund_admin_auditor_and_dashboard_pages(signed_in, seeded) -> None:
    fund = signed_in("fund")
    page = fund.get("/fund")
    fund.post("/fund/donations", data={"csrf_token": csrf_of(page.text), "donor": "盘龙商会", "amount": "500",
                                       "form_key": "d-1"})
    assert "已记录 500 金豆的捐赠" in fund.get("/fund").text
    auditor = signed_in("auditor")
    page = auditor.get("/auditor")
    assert "平衡：所有余额合计为零" in page.text
    auditor.post("/auditor/verify", data={"csrf_token": csrf_of(page.text)})
    assert 'id="verify-result">通过' in auditor.get("/auditor").text
    csv = auditor.get("/auditor/statement?account=fund&from=2026-11-01&to=2026-11-30&format=csv")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    dash = signed_in("officer").get("/dashboard")
    assert dash.status_code == 200 and "<svg" in dash.text and "鼓楼街道" in dash.text


def test_a_held_redemption_is_confirmed_or_declined_in_the_wallet(signed_in, seeded) -> None:
    books = books_of(seeded)
    books.settings = books.settings.with_overrides({"redemption_hold_threshold": 5})
    wallet = wallet_account_id_of(seeded, "volunteer")
    cashier = signed_in("cashier")
    volunteer = signed_in("volunteer")
    start = _balance(seeded, "volunteer")
    resp = _redeem(cashier, codes.issue_wallet_code(books, wallet).code, "8")
    assert resp.status_code == 201 and "钱包中确认" in resp.text
    page = volunteer.get("/wallet")
    red_id = int(re.search(r"/wallet/holds/(\d+)/confirm", page.text).group(1))
    assert _balance(seeded, "volunteer") == start - 8  # held
    volunteer.post(f"/wallet/holds/{red_id}/decline", data={"csrf_token": csrf_of(page.text)})
    assert _balance(seeded, "volunteer") == start
    _redeem(cashier, codes.issue_wallet_code(books, wallet).code, "9")
    page = volunteer.get("/wallet")
    red_id = int(re.search(r"/wallet/holds/(\d+)/confirm", page.text).group(1))
    volunteer.post(f"/wallet/holds/{red_id}/confirm", data={"csrf_token": csrf_of(page.text)})
    assert "付款已确认" in volunteer.get("/wallet").text and _balance(seeded, "volunteer") == start - 9
    again = volunteer.post(f"/wallet/holds/{red_id}/confirm", data={"csrf_token": csrf_of(page.text)})
    assert again.status_code == 302 and "已不需要您处理" in volunteer.get("/wallet").text


def test_till_sells_catalogue_items(signed_in, seeded) -> None:
    books = books_of(seeded)
    cashier = signed_in("cashier")
    page = cashier.get("/till")
    item = re.search(r'name="qty_(\d+)"', page.text).group(1)
    before = _balance(seeded, "volunteer")
    resp = _redeem(cashier, codes.issue_wallet_code(books, wallet_account_id_of(seeded, "volunteer")).code, "",
                   **{f"qty_{item}": "2"})
    assert resp.status_code == 201, resp.text
    spent = before - _balance(seeded, "volunteer")
    assert spent > 0 and f"× 2 = {spent}" in resp.text


def test_second_officer_approves_and_cards_are_issued_and_unlocked(signed_in, seeded) -> None:
    books = books_of(seeded)
    with books.session(readonly=True) as s:
        award = s.scalar(select(Award).where(Award.status == "pending_approval"))
        volunteer = award.volunteer_id
    officer = signed_in("officer")  # made the award: may not approve it
    page = officer.get("/officer")
    officer.post(f"/officer/awards/{award.id}/approve", data={"csrf_token": csrf_of(page.text)})
    assert "复核必须由另一位工作人员完成" in officer.get("/officer").text
    officer2 = signed_in("officer2")
    page = officer2.get("/officer")
    assert f'id="award-{award.id}"' in page.text
    officer2.post(f"/officer/awards/{award.id}/approve", data={"csrf_token": csrf_of(page.text)})
    with books.session(readonly=True) as s:
        assert s.get(Award, award.id).status == "posted"
    page = officer2.get(f"/officer/volunteers/{volunteer}")
    form = {"csrf_token": csrf_of(page.text), "once": _once(page.text)}
    issued = officer2.post(f"/officer/volunteers/{volunteer}/cards", data=form, follow_redirects=True)
    pin = re.search(r'id="new-pin">(\d+)<', issued.text).group(1)
    card_id = int(re.search(r"/officer/cards/(\d+)/print", issued.text).group(1))
    printed = officer2.get(f"/officer/cards/{card_id}/print")
    assert printed.status_code == 200 and "data:image/png;base64," in printed.text and pin not in printed.text
    with books.session() as s:
        s.get(Card, card_id).status = "locked"
        s.commit()
    page = officer2.get(f"/officer/volunteers/{volunteer}")
    officer2.post(f"/officer/cards/{card_id}/unlock", data={"csrf_token": csrf_of(page.text)})
    with books.session(readonly=True) as s:
        assert s.get(Card, card_id).status == "active"


def test_fund_allocates_and_admin_rotates_a_key(signed_in, seeded) -> None:
    from ledger.schema import OrgUnit

    books = books_of(seeded)
    with books.session(readonly=True) as s:
        community = s.scalar(select(OrgUnit.id).where(OrgUnit.code == "panlong.jinchen.jinxing"))
    fund = signed_in("fund")
    page = fund.get("/fund")
    fund.post("/fund/allocations", data={"csrf_token": csrf_of(page.text), "org_unit_id": str(community),
                                         "amount": "300", "form_key": "a-x"})
    assert "已下拨 300 金豆" in fund.get("/fund").text
    fund.post("/fund/settlements", data={"csrf_token": csrf_of(page.text), "period": "2026-11"})
    assert "本月尚未结束" in fund.get("/fund").text
    admin = signed_in("admin")
    page = admin.get("/admin")
    before = books.keys.active("wallet")
    form = {"csrf_token": csrf_of(page.text), "purpose": "wallet", "once": _once(page.text)}
    admin.post("/admin/keys/rotate", data=form)
    after = books.keys.active("wallet")
    assert after is not None and (before is None or after.kid != before.kid)
    assert after.kid in admin.get("/admin").text
    admin.post("/admin/keys/rotate", data=form)  # the same form sent again rotates nothing
    assert books.keys.active("wallet").kid == after.kid


def _once(html: str) -> str:
    return re.search(r'name="once" value="([^"]+)"', html).group(1)


def test_a_group_leader_claims_for_a_volunteer_of_their_group(signed_in, seeded) -> None:
    leader = signed_in("leader")
    page = leader.get("/wallet")
    zhang = _user_id(seeded, "laozhang")
    assert f'<option value="{zhang}">张阿姨</option>' in page.text
    before = _count(seeded, Claim)
    leader.post("/wallet/claims", data={"csrf_token": csrf_of(page.text), "kind": "patrol", "volunteer_id": str(zhang),
                                        "started_at": "2026-11-27T08:00", "ended_at": "2026-11-27T10:00"})
    with books_of(seeded).session(readonly=True) as s:
        claim = s.scalars(select(Claim).order_by(Claim.id.desc())).first()
        assert (claim.volunteer_id, claim.submitted_by_id) == (zhang, _user_id(seeded, "leader"))
    assert _count(seeded, Claim) == before + 1
    # a volunteer outside the leader's group is refused (by the page's list and by the use case)
    from ledger.access.identity import create_user_in, grant_role_in
    from ledger.schema import OrgUnit

    def outsider(s):
        user = create_user_in(s, "outsider", "goldbean", "外人")
        grant_role_in(s, user.id, "volunteer", s.scalar(select(OrgUnit.id).where(OrgUnit.code == "panlong.qingyun.bailong")))
        return user.id

    other = books_of(seeded).run(outsider)
    leader.post("/wallet/claims", data={"csrf_token": csrf_of(page.text), "kind": "patrol", "volunteer_id": str(other),
                                        "started_at": "2026-11-27T08:00", "ended_at": "2026-11-27T10:00"})
    assert _count(seeded, Claim) == before + 1 and "这属于您不负责的社区" in leader.get("/wallet").text


def test_admin_registers_a_person_grants_and_revokes_a_role(signed_in, seeded) -> None:
    from ledger.schema import Merchant

    admin = signed_in("admin")
    page = admin.get("/admin")
    admin.post("/admin/users", data={"csrf_token": csrf_of(page.text), "username": "xiaowang",
                                     "display_name": "小王", "password": "short"})
    assert "密码至少需要 8 个字符" in admin.get("/admin").text
    admin.post("/admin/users", data={"csrf_token": csrf_of(page.text), "username": "xiaowang",
                                     "display_name": "小王", "password": "long enough 1"})
    uid = _user_id(seeded, "xiaowang")
    assert uid is not None
    with books_of(seeded).session(readonly=True) as s:
        shop = s.scalar(select(Merchant.id))
    admin.post("/admin/grants", data={"csrf_token": csrf_of(page.text), "user_id": str(uid), "role": "cashier",
                                      "scope": f"merchant:{shop}"})
    cashier = seeded.test_client()
    assert sign_in(cashier, "xiaowang", "long enough 1").headers["Location"] == "/till"
    assert cashier.get("/till").status_code == 200
    admin.post(f"/admin/users/{uid}/grants/revoke", data={"csrf_token": csrf_of(page.text), "role": "cashier",
                                                          "scope": f"merchant:{shop}"})
    assert cashier.get("/till").status_code == 403  # the grants are re-read on every request
    from ledger.schema import SecurityEvent

    with books_of(seeded).session(readonly=True) as s:  # both changes logged: who, from where, what
        changes = s.execute(select(SecurityEvent.kind, SecurityEvent.actor, SecurityEvent.source)
                            .where(SecurityEvent.user_id == uid, SecurityEvent.kind.like("role_%"))
                            .order_by(SecurityEvent.id)).all()
    admin_ref = f"user:{_user_id(seeded, 'admin')}"
    assert [tuple(c) for c in changes] == [("role_granted", admin_ref, "127.0.0.1"),
                                           ("role_revoked", admin_ref, "127.0.0.1")]


def test_wallet_status_endpoint(signed_in, seeded) -> None:
    client = signed_in("volunteer")
    body = client.get("/wallet/status").json
    assert body["available"] == _balance(seeded, "volunteer") and isinstance(body["awaiting"], list)
    assert client.get("/wallet/status").headers["Cache-Control"] == "no-store"
    assert signed_in("cashier").get("/wallet/status").status_code == 403


def test_the_till_page_shows_a_paused_till_and_its_owner_lifts_it(signed_in, seeded) -> None:
    """Wrong PINs for three holders' cards at the web till pause it; the page says so, and the owner (the
    demo cashier owns the shop) lifts it with one button, which the security log records."""
    from ledger.access import security
    from ledger.schema import SecurityEvent

    books = books_of(seeded)
    till = f"user:{_user_id(seeded, 'cashier')}"
    for holder in ("volunteer", "laozhang", "leader"):
        security.record(books, "pin_failed", source="10.3.3.3", actor=till, user_id=_user_id(seeded, holder))
    client = signed_in("cashier")
    page = client.get("/till")
    assert 'id="pin-paused"' in page.text and f'name="till" value="{till}"' in page.text
    resp = client.post("/till/pin-throttle/lift", data={"csrf_token": csrf_of(page.text), "till": till})
    assert resp.status_code == 302
    assert 'id="pin-paused"' not in client.get("/till").text
    with books.session(readonly=True) as s:
        lifted = s.scalars(select(SecurityEvent).where(SecurityEvent.kind == "pin_throttle_lifted")).one()
    assert lifted.actor == f"user:{_user_id(seeded, 'cashier')}" and lifted.source == "127.0.0.1"


def test_forms_that_move_beans_are_safe_to_submit_twice(signed_in, seeded) -> None:
    """The officer's award form and the volunteer's claim form, sent twice (a double click, a resend after a
    timeout): one award, one claim."""
    officer = signed_in("officer")
    page = officer.get("/officer")
    volunteer = re.search(r'<select id="volunteer_id" name="volunteer_id"><option value="(\d+)"', page.text).group(1)
    unit = re.search(r'<select id="org_unit_id" name="org_unit_id"><option value="(\d+)"', page.text).group(1)
    form = {"csrf_token": csrf_of(page.text), "volunteer_id": volunteer, "org_unit_id": unit, "amount": "5",
            "reference": "值班表 11-27", "reason": "夜间巡逻"}
    awards, claims = _count(seeded, Award), _count(seeded, Claim)
    assert officer.post("/officer/awards", data=form).status_code == 302
    assert officer.post("/officer/awards", data=form).status_code == 302
    assert _count(seeded, Award) == awards + 1
    client = signed_in("volunteer")
    page = client.get("/wallet")
    claim = {"csrf_token": csrf_of(page.text), "kind": "tip", "category": "theft", "description": "车棚有人撬锁",
             "occurred_at": "2026-11-27T16:30"}
    client.post("/wallet/claims", data=claim)
    client.post("/wallet/claims", data=claim)
    assert _count(seeded, Claim) == claims + 1


def test_a_new_card_is_issued_once_and_its_print_page_is_not_kept(signed_in, seeded) -> None:
    """Issuing is a post-redirect-get with a one-time form key: a reload or a second submit of the same form
    issues no other card, and the PIN is shown once. The print page is not cached, not framed, under a CSP."""
    officer = signed_in("officer")
    volunteer = _user_id(seeded, "volunteer")
    page = officer.get(f"/officer/volunteers/{volunteer}")
    form = {"csrf_token": csrf_of(page.text), "once": _once(page.text)}
    cards = _count(seeded, Card)
    first = officer.post(f"/officer/volunteers/{volunteer}/cards", data=form)
    assert first.status_code == 302 and _count(seeded, Card) == cards + 1
    shown = officer.get(first.headers["Location"])
    assert 'id="new-pin"' in shown.text
    assert 'id="new-pin"' not in officer.get(first.headers["Location"]).text  # a reload: the PIN is gone
    again = officer.post(f"/officer/volunteers/{volunteer}/cards", data=form)  # the same form sent again
    assert again.status_code == 302 and _count(seeded, Card) == cards + 1
    card_id = int(re.search(r"/officer/cards/(\d+)/print", shown.text).group(1))
    printed = officer.get(f"/officer/cards/{card_id}/print")
    assert printed.status_code == 200
    assert printed.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in printed.headers["Content-Security-Policy"]
    assert printed.headers["X-Frame-Options"] == "DENY"
