"""The officer's pages as an officer uses them on a phone: the beans a claim pays before verifying, the second
officer deciding on what the first one saw (the tip text, the first officer's note), a search by name or phone
that never shows a whole phone number, readable charts, and no raw codes or English leftovers."""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import select

from doors import books_of
from ledger import earning
from ledger.access.identity import load_actor
from ledger.schema import RoleGrant, User

from .conftest import csrf_of


def _actor(app, username: str):
    with books_of(app).session(readonly=True) as s:
        return load_actor(s, s.scalar(select(User.id).where(User.username == username)))


def test_the_queue_shows_what_verifying_pays_and_the_tip_values(signed_in, seeded) -> None:
    books = books_of(seeded)
    volunteer = _actor(seeded, "volunteer")
    start = books.now() - dt.timedelta(hours=5)
    with books.session(readonly=True) as s:
        home = s.scalar(select(RoleGrant.org_unit_id).where(RoleGrant.user_id == volunteer.user_id,
                                                             RoleGrant.role == "volunteer"))
    patrol = earning.submit_claim(books, volunteer, kind="patrol", occurred_at=start, org_unit_id=home,
                                  ended_at=start + dt.timedelta(hours=2, minutes=30))
    tip = earning.submit_claim(books, volunteer, kind="tip", category="fraud", description="有人冒充民警打电话",
                               occurred_at=start)
    page = signed_in("officer2").get("/officer")
    section = page.text.split(f'id="claim-{patrol.id}"')[1].split("</section>")[0]
    assert "核实后发放 <strong>25 金豆</strong>" in section  # 2.5 hours at 10 beans an hour
    section = page.text.split(f'id="claim-{tip.id}"')[1].split("</section>")[0]
    assert "有人冒充民警打电话" in section
    tip = re.search(r'<fieldset class="tiers">(.*?)</fieldset>', section, re.S).group(1)
    assert "一般 · <strong>10 金豆</strong>" in tip or "低 · <strong>10 金豆</strong>" in tip
    assert "（需复核）" not in tip and "(需复核)" in tip  # 200 beans is above the second-approval threshold
    assert 'type="radio" name="tier"' in tip and "checked" not in tip  # a value is chosen, never assumed


def test_the_second_officer_sees_the_tip_and_the_first_officers_note(signed_in, seeded) -> None:
    books = books_of(seeded)
    claim = earning.submit_claim(books, _actor(seeded, "volunteer"), kind="tip", category="theft",
                                 occurred_at=books.now() - dt.timedelta(hours=1),
                                 description="车棚有人撬锁，穿灰色外套", location="金沙小区 3 栋")
    first = signed_in("officer")
    page = first.get("/officer")
    resp = first.post(f"/officer/claims/{claim.id}/verify", data={
        "csrf_token": csrf_of(page.text), "tier": "critical", "reason": "已调取监控，嫌疑人已抓获"})
    assert resp.status_code == 302
    second = signed_in("officer2").get("/officer")
    award = re.search(rf'<section class="card" id="award-(\d+)"[^>]*>(?:(?!</section>).)*第 {claim.id} 号',
                      second.text, re.S)
    assert award, "the pending award names its claim"
    block = second.text.split(f'id="award-{award.group(1)}"')[1].split("</section>")[0]
    assert "车棚有人撬锁，穿灰色外套" in block and "金沙小区 3 栋" in block
    assert "已调取监控，嫌疑人已抓获" in block and "李警官" in block


def test_volunteers_are_found_by_name_or_phone_and_phones_are_shown_masked(signed_in, seeded) -> None:
    officer = signed_in("officer")
    everyone = officer.get("/officer/volunteers")
    assert "139****0001" in everyone.text and "13900000001" not in everyone.text
    by_name = officer.get("/officer/volunteers", query_string={"q": "赵"})
    assert "赵志愿者" in by_name.text and "陈组长" not in by_name.text and 'id="search-result"' in by_name.text
    by_phone = officer.get("/officer/volunteers", query_string={"q": "0002"})
    assert "陈组长" in by_phone.text and "赵志愿者" not in by_phone.text
    assert "13900000002" not in by_phone.text and "139****0002" in by_phone.text
    nobody = officer.get("/officer/volunteers", query_string={"q": "00"})  # two digits: a name search, no match
    assert "没有找到" in nobody.text
    uid = re.search(r'/officer/volunteers/(\d+)">赵志愿者', everyone.text).group(1)
    one = officer.get(f"/officer/volunteers/{uid}")
    assert "139****0001" in one.text and "13900000001" not in one.text


def test_dashboard_text_is_page_text_not_scaled_svg_text(signed_in) -> None:
    page = signed_in("officer").get("/dashboard")
    assert page.status_code == 200 and "<svg" in page.text
    assert "<text" not in page.text  # no chart text shrinks with its drawing on a phone
    assert page.text.count('class="bar-label"') >= 8 and "鼓楼街道" in page.text


def test_no_raw_codes_or_english_leftovers_on_staff_pages(signed_in, seeded) -> None:
    volunteer = signed_in("volunteer")
    refused = volunteer.get("/officer")
    assert refused.status_code == 403 and "permission_denied" not in refused.text and "代码" not in refused.text
    admin = signed_in("admin").get("/admin")
    assert "<th>名称</th><th>层级</th>" in admin.text or "<th>名称</th>" in admin.text
    auditor = signed_in("auditor")
    page = auditor.get("/auditor")
    assert "(no org unit)" not in page.text and "区级账户" in page.text
    auditor.post("/auditor/verify", data={"csrf_token": csrf_of(page.text)})
    page = auditor.get("/auditor")
    assert "已核对" in page.text and "OK:" not in page.text and "transfers" not in page.text


def test_an_officer_switches_off_a_volunteers_phone_after_a_confirmation(signed_in, seeded) -> None:
    """A volunteer's lost phone: its offline codes are switched off from the officer's page for them (asked first,
    once); the use case's own check keeps an officer of another community out."""
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ledger import redemption
    from ledger.access.identity import create_user_in, grant_role_in, hash_password
    from ledger.schema import OrgUnit, WalletDevice

    from .conftest import asks_first_and_acts_once

    books = books_of(seeded)
    raw = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode()}
    volunteer = _actor(seeded, "volunteer")
    device = redemption.register_device(books, volunteer, jwk=jwk, name="老人机")
    with books.session() as s:
        other = s.scalar(select(OrgUnit.id).where(OrgUnit.code == "panlong.gulou.wangqiying"))
        assert other is not None  # another community than the volunteer's
        outsider = create_user_in(s, "far-officer", "goldbean", "外区民警", password_hash=hash_password("goldbean"))
        grant_role_in(s, outsider.id, "officer", other)

    def status():
        with books.session(readonly=True) as s:
            return s.get(WalletDevice, device["id"]).status

    far = signed_in("far-officer")
    token = csrf_of(far.get("/officer").text)
    step = far.post(f"/officer/devices/{device['id']}/revoke", data={"csrf_token": token})
    assert step.status_code == 302 and status() == "active"  # out of their scope: refused, nothing asked

    officer = signed_in("officer")
    page = officer.get(f"/officer/volunteers/{volunteer.user_id}")
    assert "老人机" in page.text and f'id="revoke-device-{device["id"]}"' in page.text
    asks_first_and_acts_once(officer, f"/officer/devices/{device['id']}/revoke", {"csrf_token": csrf_of(page.text)},
                             status, "老人机")
    assert status() == "revoked"
    assert f'id="revoke-device-{device["id"]}"' not in officer.get(f"/officer/volunteers/{volunteer.user_id}").text
