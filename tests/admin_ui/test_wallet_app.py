"""The wallet app's pieces that need no browser: the installable app (manifest, icons, service worker, the shell
it keeps), the phone's key through the page, 长辈模式 per user on a device, and the status the app asks for."""

from __future__ import annotations

import base64
import json
import re

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from doors import books_of

from .conftest import csrf_of


def test_the_manifest_icons_and_service_worker_make_the_wallet_installable(seeded) -> None:
    client = seeded.test_client()  # signed out: the browser fetches the manifest without cookies
    manifest = client.get("/wallet/manifest.webmanifest")
    assert manifest.status_code == 200 and manifest.mimetype == "application/manifest+json"
    body = json.loads(manifest.text)
    assert body["start_url"] == body["scope"] == "/wallet" and body["display"] == "standalone"
    assert body["theme_color"] and body["name"] == "金豆钱包"
    sizes = set()
    for icon in body["icons"]:
        png = client.get(icon["src"])
        assert png.status_code == 200 and png.data[:8] == b"\x89PNG\r\n\x1a\n", icon
        sizes.add((icon["sizes"], icon["purpose"]))
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= sizes
    assert client.get("/favicon.ico").headers["Location"].endswith("/static/ui/icons/favicon-32.png")

    sw = client.get("/wallet/sw.js")
    assert sw.status_code == 200 and sw.mimetype == "text/javascript"
    assert sw.headers["Service-Worker-Allowed"] == "/wallet"
    files = json.loads(re.search(r"var FILES = (\[.*?\]);", sw.text).group(1))
    # the shell only: never the page, the code, the status, the stream or the API, which carry balances and codes
    assert "/wallet/shell" in files and "/static/ui/wallet.js" in files
    for path in files:
        assert path == "/wallet/shell" or path.startswith("/static/") or path.endswith(".webmanifest"), path
        assert client.get(path).status_code == 200, path
    assert not any(p in files for p in ("/wallet", "/wallet/status", "/wallet/code", "/radar/events"))


def test_the_shell_carries_nothing_of_the_person(signed_in, seeded) -> None:
    client = signed_in("volunteer")
    page = client.get("/wallet")
    assert page.headers["Cache-Control"] == "no-store"
    balance = re.search(r'data-value="(\d+)"', page.text).group(1)
    shell = client.get("/wallet/shell")
    assert shell.status_code == 200
    for secret in ('name="csrf-token"', "csrf_token", "data-code=\"ey", "赵志愿者", f'data-value="{balance}"'):
        assert secret not in shell.text, secret
    assert 'id="qr-offline"' in shell.text and 'data-shell="1"' in shell.text


def test_a_phone_registers_its_key_through_the_page_and_switches_it_off(signed_in, seeded) -> None:
    client = signed_in("volunteer")
    page = client.get("/wallet")
    raw = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    token = {"X-CSRF-Token": csrf_of(page.text)}
    assert client.post("/wallet/devices", json={"public_jwk": {"kty": "OKP", "crv": "Ed25519", "x": x}}).status_code == 400
    resp = client.post("/wallet/devices", json={"public_jwk": {"kty": "OKP", "crv": "Ed25519", "x": x}, "name": "我的手机"},
                       headers=token)
    assert resp.status_code == 201, resp.json
    device = resp.json
    assert device["signing"]["typ"] == "gb-offline+jwt"
    bad = client.post("/wallet/devices", json={"public_jwk": {"kty": "OKP", "crv": "Ed25519", "x": "abc"}}, headers=token)
    assert bad.status_code == 422 and bad.json["error"] == "device_key_invalid"
    me = client.get("/wallet?tab=me").text
    assert device["kid"] in me and "我的手机" in me
    client.post(f"/wallet/devices/{device['id']}/revoke", data={"csrf_token": csrf_of(me)})
    me = client.get("/wallet?tab=me").text
    assert "已停用" in me and device["kid"] not in re.search(r'data-kids="([^"]*)"', me).group(1)


def test_elder_mode_is_remembered_per_user_on_this_device(signed_in, seeded) -> None:
    client = signed_in("volunteer")
    page = client.get("/wallet?tab=me")
    assert 'class="elder"' not in page.text
    resp = client.post("/wallet/settings/elder", data={"csrf_token": csrf_of(page.text), "elder": "on",
                                                       "next": "/wallet?tab=me"})
    assert resp.status_code == 302 and resp.headers["Location"] == "/wallet?tab=me"
    page = client.get("/wallet?tab=me")
    assert '<html lang="zh-CN" class="elder">' in page.text and 'aria-checked="true"' in page.text
    assert 'class="elder"' in client.get("/patrols").text  # every page, not only the wallet
    # another person signing in on this device keeps their own choice
    client.post("/signout", data={"csrf_token": csrf_of(page.text)})
    other = seeded.test_client()
    other.set_cookie("gb_elder", client.get_cookie("gb_elder").value)
    from .conftest import sign_in

    sign_in(other, "leader")
    assert 'class="elder"' not in other.get("/wallet").text
    page = client.get("/signin")
    sign_in(client, "volunteer")
    page = client.get("/wallet?tab=me")
    client.post("/wallet/settings/elder", data={"csrf_token": csrf_of(page.text), "elder": "off"})
    assert 'class="elder"' not in client.get("/wallet").text


def test_the_status_names_the_last_payment_with_its_shop(signed_in, seeded) -> None:
    from ledger.access.identity import wallet_account_id
    from ledger.access.policy import SYSTEM
    from ledger.redemption import TillContext, codes, redeem
    from ledger.schema import Merchant, User

    books = books_of(seeded)
    client = signed_in("volunteer")
    with books.session(readonly=True) as s:
        from sqlalchemy import select

        volunteer = s.scalar(select(User.id).where(User.username == "volunteer"))
        wallet = wallet_account_id(s, volunteer)
        merchant = s.scalars(select(Merchant)).first()
    redeem(books, TillContext(merchant.id, SYSTEM), code=codes.issue_wallet_code(books, wallet).code, amount=6,
           idempotency_key="status-1")
    body = client.get("/wallet/status").json
    assert body["recent"][0]["shop"] == merchant.name and body["recent"][0]["amount"] == 6
    assert body["available"] == int(re.search(r'data-value="(\d+)"', client.get("/wallet").text).group(1))
    assert isinstance(body["server_time"], int)


def test_other_volunteer_forms_keep_what_was_typed_and_say_what_to_fix(seeded, signed_in) -> None:
    """The radar's answer form and the password form: the sentence beside its field (passwords never typed back)."""
    from ledger.schema import OrgUnit

    officer = signed_in("officer")
    desk = officer.get("/radar/desk")
    with books_of(seeded).session(readonly=True) as s:
        from sqlalchemy import select

        jinsha = s.scalar(select(OrgUnit.id).where(OrgUnit.code == "panlong.gulou.jinsha"))
    notice_url = officer.post("/radar/publish", data={
        "csrf_token": csrf_of(desk.text), "kind": "寻物", "title": "寻找蓝色书包", "body": "小学生的书包",
        "area": [str(jinsha)], "ends_at": "2026-11-29T18:00"}).headers["Location"]
    volunteer = signed_in("volunteer")
    page = volunteer.get(notice_url)
    r = volunteer.post(f"{notice_url}/answer", data={"csrf_token": csrf_of(page.text), "text": "在公交站看到",
                                                     "place": "金沙公交站", "occurred_at": "2099-01-01T09:00"})
    assert r.status_code == 302 and r.headers["Location"].endswith("#answer-form")
    page = volunteer.get(notice_url).text
    assert ">在公交站看到</textarea>" in page and 'value="金沙公交站"' in page and 'value="2099-01-01T09:00"' in page
    assert re.search(r'id="occurred_at"[^>]*aria-invalid="true"[^>]*aria-describedby="answer-occurred_at-error"', page)
    assert '<p class="field-error" id="answer-occurred_at-error">这个时间比现在还晚' in page
    volunteer.post(f"{notice_url}/answer", data={"csrf_token": csrf_of(page), "text": "", "place": "金沙公交站"})
    page = volunteer.get(notice_url).text
    assert 'id="answer-text-error"' in page and 'value="金沙公交站"' in page
    assert 'id="answer-form"' in page  # nothing was answered yet

    form = volunteer.get("/account/password")
    wrong = volunteer.post("/account/password", data={"csrf_token": csrf_of(form.text), "current_password": "nope",
                                                      "new_password": "a-long-new-password"})
    assert wrong.status_code == 422
    assert 'id="p-current_password-error"' in wrong.text and 'aria-invalid="true"' in wrong.text
    assert "a-long-new-password" not in wrong.text and "nope" not in wrong.text


def test_a_survey_left_half_answered_keeps_the_answers_and_marks_the_question(seeded, signed_in) -> None:
    from .test_surveys_pages import QUESTIONS, _community_id

    officer = signed_in("officer")
    page = officer.get("/surveys")
    survey_url = officer.post("/surveys/new", data={
        "csrf_token": csrf_of(page.text), "org_unit_id": _community_id(page.text), "title": "楼道照明调查",
        "questions": QUESTIONS, "reward": "2", "max_responses": "20", "days": "7"}).headers["Location"]
    officer.post(survey_url + "/publish", data={"csrf_token": csrf_of(officer.get(survey_url).text)})
    volunteer = signed_in("volunteer")
    form = volunteer.get(survey_url)
    ids = re.findall(r'name="q(\d+)"', form.text)
    single, multiple, scale, text = ids[0], ids[2], ids[4], ids[-1]
    r = volunteer.post(survey_url + "/answer", data={"csrf_token": csrf_of(form.text), f"q{multiple}": ["盗窃", "诈骗"],
                                                     f"q{scale}": "4", f"q{text}": "多装几盏灯"})
    assert r.status_code == 302 and r.headers["Location"].endswith("#answer-form")
    page = volunteer.get(survey_url).text
    assert f'id="survey-q{single}-error"' in page and "请回答这个问题" in page
    assert page.count(f'name="q{multiple}" value="盗窃" checked') == 1 and 'value="诈骗" checked' in page
    assert f'name="q{scale}" value="4" required checked' in page and ">多装几盏灯</textarea>" in page
    done = volunteer.post(survey_url + "/answer", data={"csrf_token": csrf_of(page), f"q{single}": "不够",
                                                        f"q{multiple}": "盗窃", f"q{scale}": "4"})
    assert done.status_code == 302 and "金豆已到账" in volunteer.get("/surveys").text


def test_the_web_till_takes_the_number_a_cashier_types(signed_in, seeded) -> None:
    from .test_pages import _redeem

    volunteer = signed_in("volunteer")
    page = volunteer.get("/wallet").text
    number = re.search(r'data-number="(\d{16})"', page).group(1)
    shown = re.search(r'id="pay-number" data-number="\d+">([\d ]+)<', page).group(1)
    assert shown == " ".join(number[i:i + 4] for i in range(0, 16, 4))
    cashier = signed_in("cashier")
    receipt = _redeem(cashier, shown, "4")
    assert receipt.status_code in (200, 201, 302), receipt.status_code
    after = cashier.get(receipt.headers["Location"]).text if receipt.status_code == 302 else receipt.text
    assert 'id="receipt-ok"' in after
    again = _redeem(cashier, number, "4")
    assert "这个付款码已经用过了" in again.text
