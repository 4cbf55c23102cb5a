"""Recruitment and accounts in the pages, as a resident and the community office would use them: the front
page lists a call, a resident signs up from it (a wrong sum is explained and what was typed is kept), the
office approves, the resident signs in with the mobile number; a forgotten password is reset with the
office's code; changing one's password signs the other sessions out."""

from __future__ import annotations

import re

from doors import books_of
from ledger.schema import SignupChallenge
from tests.admin_ui.conftest import csrf_of, sign_in


def _answer(app, page: str) -> tuple[str, str]:
    challenge_id = re.search(r'name="challenge_id" value="([0-9a-f]+)"', page).group(1)
    with books_of(app).session(readonly=True) as s:
        return challenge_id, s.get(SignupChallenge, challenge_id).answer


def _community(page: str) -> str:
    return re.search(r'<option value="(\d+)"[^>]*>金沙社区</option>', page).group(1)


def test_from_the_front_page_to_the_first_sign_in(seeded, signed_in) -> None:
    officer = signed_in("officer")
    desk = officer.get("/signups")
    assert desk.status_code == 200 and "发起志愿者征集" in desk.text
    made = officer.post("/recruitment/new", data={"csrf_token": csrf_of(desk.text), "org_unit_id": _community(desk.text),
                                                  "title": "夜巡志愿者招募", "needed": "12", "starter_beans": "5"})
    assert made.status_code == 302
    call_url = made.headers["Location"]

    resident = seeded.test_client()
    front = resident.get("/")
    assert "夜巡志愿者招募" in front.text and "报名当志愿者" in front.text
    form = resident.get(call_url)
    assert form.status_code == 200 and "海报二维码" in form.text
    assert resident.get(call_url + "/qr.png").headers["Content-Type"] == "image/png"
    challenge_id, answer = _answer(seeded, form.text)
    data = {"csrf_token": csrf_of(form.text), "call_id": call_url.rsplit("/", 1)[1], "name": "王阿姨",
            "phone": "13987654321", "community_id": _community(form.text), "birth_date": "1960-05-01",
            "password": "wang-ayi-2026", "consent": "1", "consent_version": "2026-11",
            "challenge_id": challenge_id, "answer": "99"}
    wrong = resident.post("/join", data=data)
    assert wrong.status_code == 422 and "算术题答得不对" in wrong.text and 'value="王阿姨"' in wrong.text
    challenge_id, answer = _answer(seeded, wrong.text)
    sent = resident.post("/join", data={**data, "challenge_id": challenge_id, "answer": answer})
    assert sent.status_code == 200 and "报名已提交" in sent.text

    desk = officer.get("/signups")
    assert "王阿姨" in desk.text
    signup_id = re.search(r'action="/signups/(\d+)/approve"', desk.text).group(1)
    assert officer.post(f"/signups/{signup_id}/approve", data={"csrf_token": csrf_of(desk.text)}).status_code == 302
    assert sign_in(resident, "13987654321", "wang-ayi-2026").status_code == 302
    assert "我的钱包" in resident.get("/wallet").text


def test_a_forgotten_password_and_a_changed_one(seeded, signed_in) -> None:
    officer = signed_in("officer")
    desk = officer.get("/signups")
    volunteer_phone = None
    with books_of(seeded).session() as s:
        from ledger.schema import User

        user = s.query(User).filter(User.username == "volunteer").one()
        user.phone = volunteer_phone = "13711112222"
    code_page = officer.post("/signups/reset-code", data={"csrf_token": csrf_of(desk.text), "phone": volunteer_phone})
    assert code_page.status_code == 200 and code_page.headers["Cache-Control"] == "no-store"
    code = re.search(r'<p class="big">(\d{8})</p>', code_page.text).group(1)

    resident = seeded.test_client()
    page = resident.get("/reset")
    bad = resident.post("/reset", data={"csrf_token": csrf_of(page.text), "phone": volunteer_phone, "code": "12345678",
                                        "new_password": "fresh-pass-1"})
    assert bad.status_code == 422 and "验证码不对" in bad.text
    ok = resident.post("/reset", data={"csrf_token": csrf_of(page.text), "phone": volunteer_phone, "code": code,
                                       "new_password": "fresh-pass-1"})
    assert ok.status_code == 302
    assert sign_in(resident, volunteer_phone, "fresh-pass-1").status_code == 302

    other = seeded.test_client()
    assert sign_in(other, volunteer_phone, "fresh-pass-1").status_code == 302
    form = resident.get("/account/password")
    changed = resident.post("/account/password", data={"csrf_token": csrf_of(form.text),
                                                       "current_password": "fresh-pass-1", "new_password": "fresh-pass-2"})
    assert changed.status_code == 302
    assert resident.get("/wallet").status_code == 200  # this session stays
    assert other.get("/wallet").status_code == 302  # the other one was signed out


def test_my_data_download_and_erasure_request_from_the_password_page(seeded, signed_in) -> None:
    import json

    from tests.admin_ui.conftest import csrf_of

    client = signed_in("volunteer")
    page = client.get("/account/password")
    assert page.status_code == 200 and "我的数据" in page.text
    data = client.get("/account/my-data.json")
    assert data.status_code == 200 and json.loads(data.data)["profile"]["username"]
    asked = client.post("/account/erasure", data={"csrf_token": csrf_of(page.text)}, follow_redirects=True)
    assert "您的申请已记录" in asked.text
    officer = signed_in("officer")
    desk = officer.get("/signups")
    assert "删除申请" in desk.text
    target = "/erasures/" + desk.text.split('action="/erasures/')[1].split('"')[0]
    from tests.admin_ui.conftest import post_confirmed

    asked_first = officer.post(target, data={"csrf_token": csrf_of(desk.text)})
    assert "不能撤销" in asked_first.text and "赵志愿者" in asked_first.text  # asked first: nothing erased yet
    done, _ = post_confirmed(officer, target, {"csrf_token": csrf_of(desk.text)})
    refused = officer.get(done.headers["Location"])
    # the demo volunteer has beans on hold (a pending payment): refused in plain words, nothing erased
    assert "该钱包有待确认的金豆" in refused.text and "删除申请" in refused.text


def test_the_sign_up_desk_shows_applicants_phone_numbers_in_part(seeded, signed_in) -> None:
    """Personal data (PIPL): the desk needs to tell applicants apart, not to read their numbers; a reset code's
    hint is masked by the same function."""
    import datetime as dt

    from ledger.schema import OrgUnit, Signup

    with books_of(seeded).session() as s:
        jinsha = s.query(OrgUnit).filter_by(code="panlong.gulou.jinsha").one().id
        s.add(Signup(community_id=jinsha, name="李大爷", phone="13612345678", birth_date=dt.date(1955, 3, 1),
                     password_hash="x", status="pending"))
    desk = signed_in("officer").get("/signups")
    assert "李大爷" in desk.text and "136****5678" in desk.text
    assert "13612345678" not in desk.text
