"""The patrol pages: a volunteer signs up, checks in by the leader's code and out, and sees the hours; the
leader's code page, the officer's desk and board; the public certificate check; refusals as sentences."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from doors import books_of
from ledger import patrols, service
from tests.admin_ui.conftest import asks_first_and_acts_once, csrf_of, sign_in
from tests.patrol_world import build_patrol_world


@pytest.fixture
def pw(app):
    return build_patrol_world(books_of(app))


def _client(app, who: str):
    client = app.test_client()
    assert sign_in(client, who, "pw").status_code == 302
    return client


def test_a_volunteer_patrols_from_the_phone_pages(app, pw, clock) -> None:
    v1 = _client(app, "v1")
    page = v1.get("/patrols")
    assert page.status_code == 200 and "金沙一组1栋岗" in page.text and "报名" in page.text
    token = csrf_of(page.text)
    assert v1.post(f"/patrols/shifts/{pw.shift_id}/signup", data={"csrf_token": token}).status_code == 302
    patrols.sign_up(pw.w.books, pw.w.actor("v3"), pw.shift_id)
    clock.now = pw.start
    leader = _client(app, "leader")
    shown = leader.get(f"/patrols/posts/{pw.post_id}/leader")
    assert shown.status_code == 200 and "data:image/png;base64," in shown.text
    code = patrols.leader_code(pw.w.books, pw.w.actor("leader"), pw.post_id)["code"]
    v1 = _client(app, "v1")
    token = csrf_of(v1.get("/patrols").text)
    r = v1.post(f"/patrols/shifts/{pw.shift_id}/check-in", data={"csrf_token": token, "how": "code", "code": code},
                follow_redirects=True)
    assert "已签到" in r.text, r.text
    # the same code from a second phone: a sentence, not a 500
    v3 = _client(app, "v3")
    token3 = csrf_of(v3.get("/patrols").text)
    r = v3.post(f"/patrols/shifts/{pw.shift_id}/check-in", data={"csrf_token": token3, "how": "code", "code": code},
                follow_redirects=True)
    assert r.status_code == 200 and "另一部手机" in r.text
    officer = _client(app, "officerA2")
    board = officer.get("/patrols/board")
    assert board.status_code == 200 and "<svg" in board.text and "V1" in board.text
    clock.now = pw.end
    v1 = _client(app, "v1")
    token = csrf_of(v1.get("/patrols").text)
    code = patrols.leader_code(pw.w.books, pw.w.actor("leader"), pw.post_id)["code"]
    v1.post(f"/patrols/shifts/{pw.shift_id}/check-out", data={"csrf_token": token, "how": "code", "code": code})
    records = v1.get("/patrols/records")
    assert "2.00" in records.text
    desk = _client(app, "officerA2").get("/patrols/desk")
    assert desk.status_code == 200 and "发布" in desk.text


def test_the_public_verify_page(app, pw) -> None:
    client = app.test_client()
    page = client.get("/patrols/verify", query_string={"code": "forged.code.here"})
    assert page.status_code == 200 and 'id="certificate-invalid"' in page.text
    cert = service.issue_certificate(pw.w.books, pw.w.actor("v1"), first_day=pw.start.date(),
                                     last_day=pw.start.date())
    page = client.get("/patrols/verify", query_string={"code": cert.code})
    assert 'id="certificate-valid"' in page.text and "V1" in page.text


def test_the_leader_checks_in_a_member_without_a_phone_and_sees_codes_used(app, pw, clock) -> None:
    patrols.sign_up(pw.w.books, pw.w.actor("v1"), pw.shift_id)
    clock.now = pw.start
    leader = _client(app, "leader")
    page = leader.get(f"/patrols/posts/{pw.post_id}/leader")
    assert page.status_code == 200 and f'id="member-in-{pw.w.users["v1"]}"' in page.text
    jti = re.search(r'data-jti="([^"]+)"', page.text).group(1)
    assert leader.get(f"/patrols/posts/{pw.post_id}/leader/used", query_string={"jti": jti}).json == {"used": False}
    r = leader.post(f"/patrols/shifts/{pw.shift_id}/member", data={
        "csrf_token": csrf_of(page.text), "volunteer_id": str(pw.w.users["v1"]), "action": "in"}, follow_redirects=True)
    assert "已为该队员签到" in r.text and f'id="member-out-{pw.w.users["v1"]}"' in r.text
    [row] = [r for r in patrols.roster(pw.w.books, pw.w.actor("officerA2"), pw.shift_id) if r.volunteer_name == "V1"]
    assert (row.check_in_proof, row.recorded_by_id) == ("leader_manual", pw.w.users["leader"])
    # a volunteer who is not the leader cannot do it for someone else: a sentence, nothing changes
    v3 = _client(app, "v3")
    r = v3.post(f"/patrols/shifts/{pw.shift_id}/member", data={
        "csrf_token": csrf_of(v3.get("/patrols").text), "volunteer_id": str(pw.w.users["v1"]), "action": "out"},
        follow_redirects=True)
    assert r.status_code == 200 and patrols.get_shift(pw.w.books, pw.w.actor("v1"), pw.shift_id).my_status == "checked_in"


def test_the_dashboard_shows_the_posts_now_to_those_who_may_see_the_board(app, pw, clock) -> None:
    patrols.sign_up(pw.w.books, pw.w.actor("v1"), pw.shift_id)
    clock.now = pw.start + dt.timedelta(minutes=15)
    page = _client(app, "officerA2").get("/dashboard")
    assert page.status_code == 200 and 'id="patrol-now"' in page.text
    section = page.text.split('id="patrol-now"')[1].split("</section>")[0]
    assert "无人到岗 <strong>1</strong>" in section and "未到岗 <strong>1</strong>" in section
    assert 'id="patrol-now"' not in _client(app, "fund").get("/dashboard").text


def test_leaving_a_shift_refusing_an_attendance_and_closing_a_shift_ask_first(app, pw, clock) -> None:
    """What cannot be undone asks first, on a page of its own, and acts once (a resend changes nothing)."""
    books, officer = pw.w.books, pw.w.actor("officerA2")
    roster = lambda: tuple((r.volunteer_id, r.status, r.attendance) for r in patrols.roster(books, officer, pw.shift_id))
    for who in ("v1", "v3", "leader"):
        patrols.sign_up(books, pw.w.actor(who), pw.shift_id)
    v3 = _client(app, "v3")
    asks_first_and_acts_once(v3, f"/patrols/shifts/{pw.shift_id}/withdraw",
                             {"csrf_token": csrf_of(v3.get("/patrols").text)}, roster, "退出这个班次")
    v1 = pw.w.actor("v1")
    clock.now = pw.start
    patrols.check_in(books, v1, pw.shift_id, pw.by_sign())
    clock.now = pw.end
    held = patrols.check_out(books, v1, pw.shift_id, pw.by_sign())  # location only: held for an officer
    desk = _client(app, "officerA2")
    token = csrf_of(desk.get("/patrols/desk").text)
    after = asks_first_and_acts_once(desk, f"/patrols/desk/attendance/{held.id}/refuse",
                                     {"csrf_token": token, "reason": "不在岗"}, roster, "V1")
    assert (pw.w.users["v1"], "checked_out", "refused") in after
    clock.now = pw.end + dt.timedelta(hours=1)  # over, grace included
    after = asks_first_and_acts_once(desk, f"/patrols/desk/shifts/{pw.shift_id}/close", {"csrf_token": token},
                                     roster, "金沙一组1栋岗")
    assert (pw.w.users["leader"], "no_show", None) in after
