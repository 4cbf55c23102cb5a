"""The radar's rules on SQLite and PostgreSQL: who sees a notice, answering, the bounty held, paid and
released exactly once, versions, reports. Answers are earning claims: they are decided with
``earning.verify_claim`` / ``reject_claim`` / ``approve_award`` like any claim."""

from __future__ import annotations

import datetime as dt

import pytest

from ledger import earning, radar
from ledger.access.identity import grant_role_in
from ledger.errors import DomainError
from ledger.journal.accounts import expire_holds
from ledger.journal.verify import verify_books
from ledger.schema import RoleGrant
from tests.ledger.radar.radar_world import bounty_pending, budget, build_world, publish, wallet


def code_of(call, *args, **kwargs) -> str:
    with pytest.raises(DomainError) as info:
        call(*args, **kwargs)
    return info.value.code


@pytest.fixture
def w(books):
    return build_world(books)


def verify(w, officer: str, claim_id: int, **kw):
    return earning.verify_claim(w.books, w.actor(officer), claim_id, reason=kw.pop("reason", "核实"), **kw)


def test_a_notice_reaches_the_volunteers_of_its_area_and_nobody_else(w):
    n = publish(w, area=("c1",))
    assert [x.id for x in radar.list_notices(w.books, w.actor("v1"))] == [n.id]  # building 1 lies in 金沙
    assert [x.id for x in radar.list_notices(w.books, w.actor("leader"))] == [n.id]
    for outsider in ("v2", "v3", "cashier", "fund", "officerB"):
        assert radar.list_notices(w.books, w.actor(outsider)) == []
        # hidden, not forbidden: the notice does not exist for them
        assert code_of(radar.get_notice, w.books, w.actor(outsider), n.id) == "notice_not_found"
        assert code_of(radar.answer_notice, w.books, w.actor(outsider), n.id, text="x") == "notice_not_found"
    assert radar.get_notice(w.books, w.actor("officerA2"), n.id).title == "寻找走失老人"
    assert radar.get_notice(w.books, w.actor("auditor"), n.id).id == n.id


def test_a_building_notice_is_not_for_the_whole_community(w):
    n = publish(w, area=("b1",))
    assert [x.id for x in radar.list_notices(w.books, w.actor("v1"))] == [n.id]
    assert radar.list_notices(w.books, w.actor("leader")) == []  # the group lies above the building


def test_a_volunteer_who_moves_stops_seeing_the_old_area_at_once(w):
    n = publish(w, area=("c1",))
    with w.books.session() as s:
        grant = s.query(RoleGrant).filter_by(user_id=w.users["v1"], role="volunteer").one()
        grant.org_unit_id = w.units["c3"]
    assert radar.list_notices(w.books, w.actor("v1")) == []
    assert code_of(radar.get_notice, w.books, w.actor("v1"), n.id) == "notice_not_found"


def test_publishing_outside_ones_scope_or_as_a_volunteer_is_refused(w):
    assert code_of(publish, w, officer="officerA2", area=("c2",)) == "out_of_scope"
    assert code_of(publish, w, officer="officerA", area=("c1", "c3")) == "out_of_scope"
    assert code_of(publish, w, officer="v1") == "permission_denied"
    assert code_of(publish, w, kind="通缉") == "validation_failed"
    assert code_of(publish, w, days=-1) == "notice_end_invalid"
    assert code_of(publish, w, days=40) == "notice_end_invalid"
    assert code_of(publish, w, area=("streetA",), bounty=50) == "not_a_community"  # which budget pays?
    assert radar.list_notices(w.books, w.actor("officerA")) == []


def test_a_bounty_larger_than_the_budget_is_refused_and_changes_nothing(w):
    assert code_of(publish, w, bounty=10_001) == "insufficient_funds"
    assert budget(w) == (10_000, 0)
    assert radar.list_notices(w.books, w.actor("officerA")) == []


def test_bounty_held_then_paid_once_to_the_verified_answer(w):
    n = publish(w, bounty=80)
    assert budget(w) == (10_000, 80) and bounty_pending(w) == 80
    a = radar.answer_notice(w.books, w.actor("v1"), n.id, text="在菜市场门口看到", place="金沙菜市场")
    assert code_of(radar.answer_notice, w.books, w.actor("v1"), n.id, text="again") == "already_answered"
    board = radar.list_answers(w.books, w.actor("officerA2"), n.id)
    assert [(x.id, x.text, x.place, x.paid_from_bounty) for x in board] == [(a.id, "在菜市场门口看到", "金沙菜市场", True)]
    claim = earning.get_claim(w.books, w.actor("officerA2"), a.id)  # the answer IS the claim
    assert (claim.kind, claim.category, claim.status) == ("tip", "answer", "submitted") and claim.reserve_id
    done = verify(w, "officerA2", a.id, reason="找到了")
    assert (done.status, done.amount, done.award_status) == ("verified", 80, "posted")
    assert wallet(w, "v1") == 80 and budget(w) == (9_920, 0) and bounty_pending(w) == 0
    assert code_of(verify, w, "officerA", a.id) == "claim_already_decided"
    assert code_of(earning.reject_claim, w.books, w.actor("officerA"), a.id, reason="no") == "claim_already_decided"
    radar.close_notice(w.books, w.actor("officerA"), n.id, reason="找到")
    assert wallet(w, "v1") == 80 and budget(w) == (9_920, 0)
    assert radar.get_notice(w.books, w.actor("v1"), n.id).bounty_paid == 80
    assert verify_books(w.books).ok


def test_a_bounty_split_between_answers_and_the_rest_released_on_close(w):
    n = publish(w, bounty=90, area=("streetA",), budget_org_unit_id=w.units["c1"])
    a1 = radar.answer_notice(w.books, w.actor("v1"), n.id, text="车牌云A12345")
    a3 = radar.answer_notice(w.books, w.actor("v3"), n.id, text="往北京路去了")
    verify(w, "officerA", a1.id, amount=30)
    assert budget(w) == (9_970, 60)
    assert code_of(verify, w, "officerA", a3.id, amount=61) == "exceeds_bounty"
    verify(w, "officerA", a3.id, amount=20)
    assert (wallet(w, "v1"), wallet(w, "v3")) == (30, 20)
    assert budget(w) == (9_950, 40)
    radar.close_notice(w.books, w.actor("officerA"), n.id)
    assert budget(w) == (9_950, 0) and bounty_pending(w) == 0
    assert code_of(radar.close_notice, w.books, w.actor("officerA"), n.id) == "notice_not_open"
    assert verify_books(w.books).ok


def test_answers_close_with_the_notice_and_the_unpaid_bounty_is_released_at_its_end(w):
    n = publish(w, bounty=50, days=1)
    w.books.clock.advance(24 * 3600 + 1)
    assert radar.get_notice(w.books, w.actor("v1"), n.id).state == "expired"
    assert code_of(radar.answer_notice, w.books, w.actor("v1"), n.id, text="太晚") == "notice_not_open"
    assert radar.list_notices(w.books, w.actor("v1")) == []
    assert radar.expire_notices(w.books) == 1
    assert budget(w) == (10_000, 50)  # answers given in time may still be verified during the grace
    w.books.clock.advance(3 * 24 * 3600)
    assert expire_holds(w.books) == 1
    assert budget(w) == (10_000, 0) and bounty_pending(w) == 0
    assert verify_books(w.books).ok


def test_an_answer_given_in_time_is_paid_in_the_grace_and_not_after(w):
    n = publish(w, bounty=50, days=1)
    a1 = radar.answer_notice(w.books, w.actor("v1"), n.id, text="在公园")
    a3 = radar.answer_notice(w.books, w.actor("leader"), n.id, text="在路口")
    w.books.clock.advance(2 * 24 * 3600)  # ended, within the grace
    verify(w, "officerA", a1.id, amount=20)
    w.books.clock.advance(2 * 24 * 3600)  # past the grace: the rest was released
    assert code_of(verify, w, "officerA", a3.id, amount=10) == "reserve_released"
    assert verify(w, "officerA", a3.id).amount is None  # verified without beans
    assert expire_holds(w.books) == 1  # the worker releases the rest at the end of the grace
    assert wallet(w, "v1") == 20 and budget(w) == (9_980, 0)
    assert verify_books(w.books).ok


def test_self_dealing_scope_and_maker_checker(w):
    with w.books.session() as s:
        grant_role_in(s, w.users["officerA2"], "volunteer", w.units["c1"])
    n = publish(w, officer="officerA", bounty=150)
    mine = radar.answer_notice(w.books, w.actor("officerA2"), n.id, text="我看到了")
    assert code_of(verify, w, "officerA2", mine.id) == "self_dealing"
    assert code_of(radar.answer_notice, w.books, w.actor("officerA"), n.id, text="x") == "permission_denied"
    a = radar.answer_notice(w.books, w.actor("v1"), n.id, text="在公园")
    assert code_of(verify, w, "officerB", a.id) == "out_of_scope"
    held = verify(w, "officerA", a.id, amount=120)  # over the threshold of 100: a second officer
    assert held.award_status == "pending_approval" and wallet(w, "v1") == 0
    assert budget(w) == (10_000, 150)  # 120 held for the volunteer, 30 still reserved
    assert code_of(earning.approve_award, w.books, w.actor("officerA"), held.award_id) == "own_approval"
    assert code_of(verify, w, "officerA3", mine.id, amount=31) == "exceeds_bounty"
    radar.close_notice(w.books, w.actor("officerA"), n.id)  # the held payment keeps its own hold
    assert budget(w) == (10_000, 120) and bounty_pending(w) == 0
    assert earning.approve_award(w.books, w.actor("officerA3"), held.award_id).status == "posted"
    assert code_of(earning.approve_award, w.books, w.actor("officerA3"), held.award_id) == "award_not_pending"
    assert wallet(w, "v1") == 120 and budget(w) == (9_880, 0)
    assert verify_books(w.books).ok


def test_a_refused_bounty_payment_goes_back_to_the_bounty(w):
    n = publish(w, bounty=150)
    a = radar.answer_notice(w.books, w.actor("v1"), n.id, text="在公园")
    held = verify(w, "officerA", a.id)  # all 150: over the threshold
    assert held.award_status == "pending_approval" and bounty_pending(w) == 0
    earning.void_award(w.books, w.actor("officerA3"), held.award_id, reason="证据不足")
    assert bounty_pending(w) == 150 and budget(w) == (10_000, 150)
    assert radar.get_notice(w.books, w.actor("v1"), n.id).bounty_left == 150
    assert earning.get_claim(w.books, w.actor("v1"), a.id).status == "rejected"
    assert verify_books(w.books).ok


def test_bounty_payments_count_toward_the_earning_caps(w):
    w.books.settings = w.books.settings.with_overrides({"earning": {"volunteer_daily_cap": 50}})
    n = publish(w, bounty=80)
    a = radar.answer_notice(w.books, w.actor("v1"), n.id, text="在公园")
    assert code_of(verify, w, "officerA", a.id, amount=60) == "volunteer_daily_cap"
    assert budget(w) == (10_000, 80) and wallet(w, "v1") == 0  # nothing changed
    verify(w, "officerA", a.id, amount=50)
    assert wallet(w, "v1") == 50 and budget(w) == (9_950, 30)


def test_amend_keeps_history_and_extending_or_raising_the_bounty_moves_the_hold(w):
    n = publish(w, bounty=40, days=1)
    radar.amend_notice(w.books, w.actor("officerA2"), n.id, body="改:红色外套", note="衣服颜色更正")
    radar.amend_notice(w.books, w.actor("officerA"), n.id, bounty=60,
                       ends_at=w.books.now() + dt.timedelta(days=5))
    assert budget(w) == (10_000, 60)
    history = radar.notice_history(w.books, w.actor("v1"), n.id)
    assert [(h["version"], h["bounty"]) for h in history] == [(1, 40), (2, 40), (3, 60)]
    assert history[1]["body"] == "改:红色外套" and history[0]["body"] == "蓝色外套,约75岁"
    now = radar.get_notice(w.books, w.actor("v1"), n.id)
    assert (now.version, now.body, now.bounty) == (3, "改:红色外套", 60)
    w.books.clock.advance(2 * 24 * 3600)  # the old end has passed: the notice was extended
    assert radar.get_notice(w.books, w.actor("v1"), n.id).state == "open"
    assert code_of(radar.amend_notice, w.books, w.actor("officerB"), n.id, body="x") == "notice_not_found"
    a = radar.answer_notice(w.books, w.actor("v1"), n.id, text="看到了")
    verify(w, "officerA", a.id, amount=50)
    assert code_of(radar.amend_notice, w.books, w.actor("officerA"), n.id, bounty=40) == "exceeds_bounty"
    radar.amend_notice(w.books, w.actor("officerA"), n.id, bounty=50)
    assert budget(w) == (9_950, 0)
    assert verify_books(w.books).ok


def test_a_notice_without_a_bounty_pays_an_ordinary_tip_reward(w):
    n = publish(w, kind="协查")
    a = radar.answer_notice(w.books, w.actor("v1"), n.id, text="可疑人员在3栋")
    assert code_of(verify, w, "officerA", a.id, amount=30) == "validation_failed"  # beans are a bounty's
    assert code_of(verify, w, "officerA", a.id) == "tier_required"
    verify(w, "officerA", a.id, tier="medium")
    assert wallet(w, "v1") == 30 and budget(w) == (9_970, 0)


def test_a_verified_answer_adds_a_service_record_apart_from_the_beans(w):
    from ledger import service

    n = publish(w, bounty=150)
    a1 = radar.answer_notice(w.books, w.actor("v1"), n.id, text="在公园")
    a2 = radar.answer_notice(w.books, w.actor("leader"), n.id, text="在路口")
    held = verify(w, "officerA", a1.id, amount=120)  # waits for a second officer: no record yet
    earning.reject_claim(w.books, w.actor("officerA"), a2.id, reason="不符")
    assert service.my_service_records(w.books, w.actor("v1")) == []
    assert service.my_service_records(w.books, w.actor("leader")) == []
    earning.approve_award(w.books, w.actor("officerA3"), held.award_id)
    [record] = service.my_service_records(w.books, w.actor("v1"))
    assert (record.activity, record.minutes, record.organiser, record.verified_by) == (
        "radar", 30, "金沙社区", f"user:{w.users['officerA']}")


def test_reports_are_rate_limited_consented_and_triaged_in_scope(w):
    rep = radar.submit_report(w.books, category="theft", text="有人撬电动车锁", source="203.0.113.9",
                              phone="138 0000 0000", org_unit_id=w.units["c1"], consent=True)
    assert rep.phone == "138****0000" and rep.status == "new"  # shown in part; the number stays in the row
    assert code_of(radar.submit_report, w.books, category="theft", text="有人撬电动车锁", source="x",
                   consent=False) == "consent_required"
    for _ in range(4):
        radar.submit_report(w.books, category="other", text="再一次举报内容", source="203.0.113.9", consent=True)
    assert code_of(radar.submit_report, w.books, category="other", text="再一次举报内容", source="203.0.113.9",
                   consent=True) == "rate_limited"
    assert [r.id for r in radar.list_reports(w.books, w.actor("officerA2"))] == [rep.id]
    assert radar.list_reports(w.books, w.actor("officerB")) == []
    assert code_of(radar.list_reports, w.books, w.actor("v1")) == "permission_denied"
    assert code_of(radar.triage_report, w.books, w.actor("officerB"), rep.id, status="closed") == "report_not_found"
    done = radar.triage_report(w.books, w.actor("officerA"), rep.id, status="linked", case_ref="PL-2026-17")
    assert (done.status, done.case_ref) == ("linked", "PL-2026-17")
    w.books.clock.advance((radar.RETENTION_DAYS + 1) * 24 * 3600)
    assert radar.purge_reports(w.books) == 5
    gone = radar.list_reports(w.books, w.actor("officerA"), status=None)[0]
    assert gone.phone is None and gone.text.startswith("（")


def test_two_officers_verifying_the_same_answer_at_once_pay_it_once(w):
    import threading

    n = publish(w, bounty=60, area=("c1",))
    a = radar.answer_notice(w.books, w.actor("v1"), n.id, text="同时核实")
    officers = [w.actor("officerA"), w.actor("officerA2")]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def verify(officer) -> None:
        barrier.wait()
        try:
            earning.verify_claim(w.books, officer, a.id, reason="核实", amount=25)
            outcomes.append("paid")
        except DomainError as exc:
            outcomes.append(exc.code)

    threads = [threading.Thread(target=verify, args=(o,)) for o in officers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["claim_already_decided", "paid"]
    assert wallet(w, "v1") == 25 and budget(w) == (9_975, 35)
    assert verify_books(w.books).ok


def test_the_worker_ends_notices_and_erases_old_reports(w):
    from goldbean.worker import radar_job

    publish(w, days=1)
    radar.submit_report(w.books, category="other", text="楼道堆放杂物", source="x", consent=True)
    w.books.clock.advance((radar.RETENTION_DAYS + 1) * 24 * 3600)
    assert radar_job(w.books) == "1 notices ended, 1 reports erased"


def test_a_report_becomes_a_notice_in_one_step_or_is_linked_to_a_case(w):
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 10)).save(buf, format="PNG")
    rep = radar.submit_report(w.books, category="missing", text="我家老人走失，穿蓝色外套", source="203.0.113.7",
                              org_unit_id=w.units["c1"], consent=True, photo=buf.getvalue())
    other = radar.submit_report(w.books, category="theft", text="楼下电动车被盗", source="203.0.113.8",
                                org_unit_id=w.units["c1"], consent=True)
    end = w.books.now() + dt.timedelta(days=2)
    assert code_of(radar.convert_report, w.books, w.actor("officerB"), rep.id, kind="寻人", title="寻人",
                   body="", ends_at=end) == "report_not_found"  # not their community
    assert code_of(radar.convert_report, w.books, w.actor("officerA"), rep.id, kind="寻人", title="寻找走失老人",
                   body="蓝色外套", ends_at=end, bounty=20_000) == "insufficient_funds"
    assert radar.list_notices(w.books, w.actor("v1")) == []  # refused: nothing published, nothing recorded
    done = radar.convert_report(w.books, w.actor("officerA"), rep.id, kind="寻人", title="寻找走失老人",
                                body="蓝色外套,约75岁", ends_at=end, bounty=30, with_photos=True)
    assert done.status == "converted" and done.notice_id is not None
    notice = radar.get_notice(w.books, w.actor("v1"), done.notice_id)  # the report's community sees it
    assert (notice.area, notice.bounty, len(notice.photo_ids)) == ([w.units["c1"]], 30, 1)
    assert "走失，穿" not in notice.body  # the officer's words, not the report's
    assert budget(w) == (10_000, 30)
    assert code_of(radar.convert_report, w.books, w.actor("officerA"), rep.id, kind="寻人", title="again",
                   body="", ends_at=end) == "report_not_open"
    linked = radar.triage_report(w.books, w.actor("officerA2"), other.id, status="linked", case_ref="PL-2026-99")
    assert (linked.status, linked.case_ref) == ("linked", "PL-2026-99")
    closed = radar.triage_report(w.books, w.actor("officerA2"), other.id, status="closed", note="已破案")
    assert (closed.status, closed.case_ref, closed.triage_note) == ("closed", "PL-2026-99", "已破案")
    assert verify_books(w.books).ok
