"""The radar pages through Flask's test client: the officer publishes from the desk, the volunteer of the
area sees the notice in the radar list and answers it, the officer verifies on the answer board and the
bounty is paid; a volunteer of another community gets 404 for the notice; the public report page works
without an account and asks for consent."""

from __future__ import annotations

import re

from sqlalchemy import select

from doors import books_of
from ledger.access.identity import create_user_in, grant_role_in, hash_password
from ledger.schema import Award, Claim, Notice, OrgUnit, Report

from .conftest import asks_first_and_acts_once, csrf_of, sign_in


def _unit(app, code: str) -> int:
    with books_of(app).session(readonly=True) as s:
        return s.scalar(select(OrgUnit.id).where(OrgUnit.code == code))


def test_publish_answer_verify_through_the_pages(seeded, signed_in) -> None:
    officer = signed_in("officer")
    desk = officer.get("/radar/desk")
    assert desk.status_code == 200 and "发布" in desk.text
    jinsha = _unit(seeded, "panlong.gulou.jinsha")
    r = officer.post("/radar/publish", data={
        "csrf_token": csrf_of(desk.text), "kind": "寻人", "title": "寻找走失老人", "body": "蓝色外套",
        "area": [str(jinsha)], "ends_at": "2026-11-29T18:00", "bounty": "40"})
    assert r.status_code == 302, r.text
    notice_url = r.headers["Location"]
    with books_of(seeded).session(readonly=True) as s:
        notice = s.scalar(select(Notice))
    assert notice.bounty == 40 and notice_url.endswith(f"/radar/{notice.id}")

    volunteer = signed_in("volunteer")
    listing = volunteer.get("/radar")
    assert listing.status_code == 200 and "寻找走失老人" in listing.text and "40" in listing.text
    page = volunteer.get(notice_url)
    assert page.status_code == 200 and 'id="answer-form"' in page.text
    r = volunteer.post(f"{notice_url}/answer", data={"csrf_token": csrf_of(page.text), "text": "在菜市场看到",
                                                     "place": "金沙菜市场"})
    assert r.status_code == 302
    assert 'id="answer-form"' not in volunteer.get(notice_url).text  # answered once

    board = officer.get(notice_url)
    claim_id = int(re.search(r'id="verify-(\d+)"', board.text).group(1))
    assert f'action="/officer/claims/{claim_id}/verify"' in board.text  # an answer is a claim
    r = officer.post(f"/officer/claims/{claim_id}/verify", data={"csrf_token": csrf_of(board.text),
                                                                 "next": notice_url, "reason": "核实"})
    assert r.status_code == 302 and r.headers["Location"].endswith(notice_url)
    with books_of(seeded).session(readonly=True) as s:
        assert s.get(Claim, claim_id).status == "verified"
        assert s.scalar(select(Award.amount).where(Award.claim_id == claim_id)) == 40


def test_a_volunteer_of_another_community_gets_404(seeded, signed_in) -> None:
    books = books_of(seeded)
    with books.session() as s:
        other = create_user_in(s, "outsider", "goldbean", "外人", password_hash=hash_password("goldbean"))
        grant_role_in(s, other.id, "volunteer", _unit(seeded, "panlong.gulou.wangqiying") or _unit(
            seeded, "panlong"))
    officer = signed_in("officer")
    desk = officer.get("/radar/desk")
    r = officer.post("/radar/publish", data={
        "csrf_token": csrf_of(desk.text), "kind": "安全提示", "title": "电信诈骗提醒", "body": "",
        "area": [str(_unit(seeded, "panlong.gulou.jinsha.g1.b3"))], "ends_at": "2026-11-28T18:00"})
    notice_url = r.headers["Location"]
    client = seeded.test_client()
    assert sign_in(client, "outsider").status_code == 302
    assert "电信诈骗提醒" not in client.get("/radar").text
    assert client.get(notice_url).status_code == 404


def test_anyone_reports_online_with_consent(seeded) -> None:
    client = seeded.test_client()
    assert 'href="/report"' in client.get("/").text
    page = client.get("/report")
    assert page.status_code == 200 and 'id="consent-text"' in page.text and "110" in page.text
    refused = client.post("/report", data={"csrf_token": csrf_of(page.text), "category": "theft",
                                           "text": "有人撬电动车锁"})
    assert refused.status_code == 302
    with books_of(seeded).session(readonly=True) as s:
        assert s.scalar(select(Report)) is None
    done = client.post("/report", data={"csrf_token": csrf_of(page.text), "category": "theft",
                                        "text": "有人撬电动车锁", "consent": "yes"})
    assert done.status_code == 200 and 'id="report-receipt"' in done.text


def test_an_officer_makes_a_report_a_notice_in_one_step_on_the_desk(seeded, signed_in) -> None:
    jinsha = _unit(seeded, "panlong.gulou.jinsha")
    public = seeded.test_client()
    form = public.get("/report")
    assert public.post("/report", data={"csrf_token": csrf_of(form.text), "category": "missing", "consent": "yes",
                                        "text": "我父亲走失了，穿灰色上衣", "org_unit_id": str(jinsha)}).status_code == 200
    with books_of(seeded).session(readonly=True) as s:
        report = s.scalar(select(Report))
    officer = signed_in("officer")
    desk = officer.get("/radar/desk")
    assert f'id="convert-{report.id}"' in desk.text and f'id="triage-{report.id}"' in desk.text
    r = officer.post(f"/radar/reports/{report.id}/notice", data={
        "csrf_token": csrf_of(desk.text), "kind": "寻人", "title": "寻找走失老人", "body": "灰色上衣,约80岁",
        "area": [str(jinsha)], "ends_at": "2026-11-29T18:00"})
    assert r.status_code == 302 and "/radar/" in r.headers["Location"]
    with books_of(seeded).session(readonly=True) as s:
        report = s.get(Report, report.id)
        assert report.status == "converted" and s.get(Notice, report.notice_id).title == "寻找走失老人"
    assert "寻找走失老人" in signed_in("volunteer").get("/radar").text
    assert f'id="convert-{report.id}"' not in officer.get("/radar/desk").text


def test_the_wallet_carries_the_live_banner_and_the_page_stream_works(seeded, signed_in) -> None:
    volunteer = signed_in("volunteer")
    assert 'id="radar-live"' in volunteer.get("/wallet").text
    stream = volunteer.get("/radar/events")
    assert stream.status_code == 200 and stream.mimetype == "text/event-stream"
    page = volunteer.get("/radar")
    r = volunteer.post("/radar/preferences", data={"csrf_token": csrf_of(page.text), "kinds": ["寻人"],
                                                    "quiet_from": "22:00", "quiet_to": "07:00"})
    assert r.status_code == 302
    assert 'value="22:00"' in volunteer.get("/radar").text


def test_photos_uploaded_on_the_pages_are_served_to_the_area_only(seeded, signed_in) -> None:
    import io

    from ledger.schema import Photo
    from tests.ledger.radar.test_photos import jpeg_with_gps

    officer = signed_in("officer")
    desk = officer.get("/radar/desk")
    r = officer.post("/radar/publish", data={
        "csrf_token": csrf_of(desk.text), "kind": "寻物", "title": "丢失的蓝色书包", "body": "",
        "area": [str(_unit(seeded, "panlong.gulou.jinsha"))], "ends_at": "2026-11-28T18:00",
        "photos": [(io.BytesIO(jpeg_with_gps()), "IMG_0001.jpg")]}, content_type="multipart/form-data")
    assert r.status_code == 302, r.text
    with books_of(seeded).session(readonly=True) as s:
        photo = s.scalar(select(Photo))
    assert b"Exif" not in photo.data
    volunteer = signed_in("volunteer")
    assert f"/radar/photos/{photo.id}" in volunteer.get(r.headers["Location"]).text
    assert volunteer.get(f"/radar/photos/{photo.id}").mimetype == "image/jpeg"
    client = seeded.test_client()
    page = client.get("/report")
    done = client.post("/report", data={"csrf_token": csrf_of(page.text), "category": "other", "text": "路灯坏了很久",
                                        "consent": "yes", "photo": (io.BytesIO(b"not an image"), "x.jpg")},
                       content_type="multipart/form-data")
    assert done.status_code == 302  # refused with a sentence; nothing stored
    with books_of(seeded).session(readonly=True) as s:
        assert s.scalar(select(Report)) is None


def test_the_radar_desk_shows_a_call_back_number_in_part(seeded, signed_in) -> None:
    """Personal data (PIPL): a resident's call-back number is shown masked on the desk (and in the API's list)."""
    jinsha = _unit(seeded, "panlong.gulou.jinsha")
    public = seeded.test_client()
    form = public.get("/report")
    assert public.post("/report", data={"csrf_token": csrf_of(form.text), "category": "theft", "consent": "yes",
                                        "text": "楼下有人撬电动车锁", "phone": "13912345678",
                                        "org_unit_id": str(jinsha)}).status_code == 200
    desk = signed_in("officer").get("/radar/desk")
    assert "楼下有人撬电动车锁" in desk.text and "139****5678" in desk.text
    assert "13912345678" not in desk.text


def test_an_officer_of_the_community_shows_the_number_to_call_back_and_it_is_logged(seeded, signed_in) -> None:
    """显示电话: a POST with the CSRF token (it writes the security log) answers a page with the number as a tel:
    link; the desk stays masked; a volunteer and an officer of another community are refused, nothing logged."""
    from ledger.schema import SecurityEvent

    books = books_of(seeded)
    jinsha = _unit(seeded, "panlong.gulou.jinsha")
    public = seeded.test_client()
    form = public.get("/report")
    public.post("/report", data={"csrf_token": csrf_of(form.text), "category": "theft", "consent": "yes",
                                 "text": "楼下有人撬电动车锁", "phone": "13912345678", "org_unit_id": str(jinsha)})
    far_unit = _unit(seeded, "panlong.gulou.wangqiying")
    assert far_unit is not None
    with books.session() as s:
        report_id = s.scalar(select(Report.id))
        other = create_user_in(s, "officer_far", "goldbean", "外区民警", password_hash=hash_password("goldbean"))
        grant_role_in(s, other.id, "officer", far_unit)

    def reveals() -> list:
        with books.session(readonly=True) as s:
            return list(s.scalars(select(SecurityEvent).where(SecurityEvent.kind == "report_phone_revealed")))

    path = f"/radar/reports/{report_id}/phone"
    volunteer = signed_in("volunteer")
    assert volunteer.post(path, data={"csrf_token": csrf_of(volunteer.get("/radar").text)}).status_code == 403
    far = seeded.test_client()
    assert sign_in(far, "officer_far").status_code == 302
    refused = far.post(path, data={"csrf_token": csrf_of(far.get("/radar/desk").text)}, follow_redirects=True)
    assert "13912345678" not in refused.text and "tel:" not in refused.text and "没有找到" in refused.text
    officer = signed_in("officer")
    desk = officer.get("/radar/desk")
    assert f'action="{path}"' in desk.text and "显示电话" in desk.text and "13912345678" not in desk.text
    assert officer.post(path, data={}).status_code == 400  # no CSRF token: nothing shown, nothing logged
    assert reveals() == []
    page = officer.post(path, data={"csrf_token": csrf_of(desk.text)})
    assert page.status_code == 200 and 'href="tel:13912345678"' in page.text and "139 1234 5678" in page.text
    assert page.headers["Cache-Control"] == "no-store"
    [entry] = reveals()
    assert "13912345678" not in entry.detail and entry.actor.startswith("user:")
    again = officer.get("/radar/desk")
    assert "139****5678" in again.text and "13912345678" not in again.text  # the desk stays masked


def test_closing_a_notice_or_a_report_asks_first_and_acts_once(seeded, signed_in) -> None:
    jinsha = _unit(seeded, "panlong.gulou.jinsha")
    officer = signed_in("officer")
    desk = officer.get("/radar/desk")
    token = csrf_of(desk.text)
    made = officer.post("/radar/publish", data={"csrf_token": token, "kind": "寻人", "title": "寻找走失老人",
                                                "body": "蓝色外套", "area": [str(jinsha)], "ends_at": "2026-11-29T18:00",
                                                "bounty": "40"})
    notice_url = made.headers["Location"]
    notice_id = int(notice_url.rsplit("/", 1)[1])

    def notice():
        with books_of(seeded).session(readonly=True) as s:
            n = s.get(Notice, notice_id)
            return n.closed_at is not None, n.status
    # the reason is asked for on the confirmation (kept from the notice page's field)
    asks_first_and_acts_once(officer, f"/radar/{notice_id}/close", {"csrf_token": token, "reason": ""}, notice,
                             "寻找走失老人", reason="已找到")

    public = seeded.test_client()
    form = public.get("/report")
    public.post("/report", data={"csrf_token": csrf_of(form.text), "category": "other", "consent": "yes",
                                 "text": "小区门口路灯坏了", "org_unit_id": str(jinsha)})
    with books_of(seeded).session(readonly=True) as s:
        report_id = s.scalar(select(Report.id))

    def report():
        with books_of(seeded).session(readonly=True) as s:
            return s.get(Report, report_id).status
    asks_first_and_acts_once(officer, f"/radar/reports/{report_id}/triage",
                             {"csrf_token": token, "status": "closed", "note": "已转物业"}, report, "已转物业")
    assert report() == "closed"
    # linking to a case changes nothing that cannot be changed again: no question
    public.post("/report", data={"csrf_token": csrf_of(public.get("/report").text), "category": "other",
                                 "consent": "yes", "text": "楼道里有可疑的人", "org_unit_id": str(jinsha)})
    with books_of(seeded).session(readonly=True) as s:
        second = s.scalar(select(Report.id).where(Report.status == "new"))
    linked = officer.post(f"/radar/reports/{second}/triage", data={"csrf_token": token, "status": "linked",
                                                                   "case_ref": "PL-2026-9"})
    assert linked.status_code == 302
