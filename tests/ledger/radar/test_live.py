"""Live delivery's rules: who receives which outbox event after a cursor; kinds and quiet hours (安全提示
ignores them); a moved volunteer stops receiving at once; payments go to the paid volunteer only."""

from __future__ import annotations

import pytest

from ledger import earning, notify, radar
from ledger.schema import RoleGrant
from tests.ledger.radar.radar_world import build_world, publish


@pytest.fixture
def w(books):
    return build_world(books)


def got(w, who: str, after: int = 0) -> list[tuple[str, int]]:
    events, _ = radar.events_for(w.books, w.actor(who), after=after)
    return [(e["event"], e["notice_id"]) for e in events]


def test_events_reach_the_area_only_and_resume_after_a_cursor(w):
    start = radar.latest_event_id(w.books)
    n1 = publish(w, area=("c1",))
    n2 = publish(w, area=("c3",), officer="officerB")
    assert got(w, "v1", start) == [("notice", n1.id)]
    assert got(w, "v2", start) == [("notice", n2.id)]
    assert got(w, "v3", start) == [] and got(w, "cashier", start) == []
    _, cursor = radar.events_for(w.books, w.actor("v1"), after=start)
    radar.close_notice(w.books, w.actor("officerA"), n1.id)
    assert got(w, "v1", cursor) == [("notice_closed", n1.id)]  # only what came after the cursor


def test_kinds_and_quiet_hours_but_safety_alerts_always(w):
    start = radar.latest_event_id(w.books)
    radar.set_preferences(w.books, w.actor("v1"), kinds=["寻物"], quiet_from=22 * 60, quiet_to=7 * 60)
    assert radar.preferences(w.books, w.actor("v1"))["kinds"] == ["寻物", "安全提示"]
    lost = publish(w, kind="寻物")
    publish(w, kind="寻人")
    alert = publish(w, kind="安全提示")
    assert got(w, "v1", start) == [("notice", lost.id), ("notice", alert.id)]  # 17:00 in Beijing
    w.books.clock.advance(6 * 3600)  # 23:00 in Beijing: quiet
    assert got(w, "v1", start) == [("notice", alert.id)]


def test_a_moved_volunteer_stops_receiving_and_payments_go_to_the_payee(w):
    start = radar.latest_event_id(w.books)
    n = publish(w, bounty=20)
    a = radar.answer_notice(w.books, w.actor("v1"), n.id, text="看到了")
    earning.verify_claim(w.books, w.actor("officerA"), a.id, reason="核实")
    assert ("payment", n.id) not in got(w, "v1", start)  # the outbox's worker puts it on the stream
    assert notify.deliver_due(w.books, live=radar.LiveChannel())["live"] == 1
    assert ("payment", n.id) in got(w, "v1", start)
    assert all(kind != "payment" for kind, _ in got(w, "leader", start))
    with w.books.session() as s:
        s.query(RoleGrant).filter_by(user_id=w.users["v1"], role="volunteer").one().org_unit_id = w.units["c3"]
    assert got(w, "v1", start) == [("payment", n.id)]


def test_a_notification_reaches_its_own_reader_on_the_stream_once(w):
    start = radar.latest_event_id(w.books)
    n = publish(w)
    w.books.run(lambda s: notify.send_in(s, w.books, user_ids=[w.users["v1"]], topic="shift_changed",
                                         title="班次已变更", body="请查看。", dedupe="t", link="/patrols", urgent=True))
    notify.deliver_due(w.books, live=radar.LiveChannel())
    events, cursor = radar.events_for(w.books, w.actor("v1"), after=start)
    assert [e["event"] for e in events] == ["notice", "notification"]
    assert (events[1]["title"], events[1]["link"], events[1]["urgent"]) == ("班次已变更", "/patrols", True)
    assert events[0]["notice_id"] == n.id
    assert [e["event"] for e in radar.events_for(w.books, w.actor("leader"), after=start)[0]] == ["notice"]
    assert radar.events_for(w.books, w.actor("v1"), after=cursor)[0] == []  # resumed after it: not again
    assert notify.deliver_due(w.books, live=radar.LiveChannel())["live"] == 0
