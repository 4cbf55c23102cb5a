"""Revealing a report's call-back number, on SQLite and PostgreSQL: an officer who may handle the report gets
the full number of that one report and the security log says who revealed which report's number and when,
without the number; anyone else is refused and nothing is logged; the lists stay masked."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from ledger import radar
from ledger.access import security
from ledger.errors import DomainError
from ledger.schema import SecurityEvent
from tests.ledger.radar.radar_world import build_world

NUMBER = "13912345678"


@pytest.fixture
def w(books):
    return build_world(books)


def code_of(call, *args, **kwargs) -> str:
    with pytest.raises(DomainError) as info:
        call(*args, **kwargs)
    return info.value.code


def _report(w, *, phone: str | None = NUMBER, unit: str | None = "c1"):
    return radar.submit_report(w.books, category="theft", text="楼下有人撬电动车锁", source="203.0.113.9", phone=phone,
                               org_unit_id=w.units[unit] if unit else None, consent=True)


def _reveals(w) -> list[SecurityEvent]:
    with w.books.session(readonly=True) as s:
        return list(s.scalars(select(SecurityEvent).where(SecurityEvent.kind == "report_phone_revealed")
                              .order_by(SecurityEvent.id)))


def _all_events(w) -> int:
    with w.books.session(readonly=True) as s:
        return s.scalar(select(func.count()).select_from(SecurityEvent))


def test_an_officer_in_scope_reveals_one_number_and_the_log_names_who_which_and_when(w):
    rep = _report(w)
    shown = radar.reveal_phone(w.books, w.actor("officerA2"), rep.id, source="198.51.100.7")
    assert (shown.report_id, shown.phone) == (rep.id, NUMBER)
    [entry] = _reveals(w)
    assert entry.actor == f"user:{w.users['officerA2']}" and entry.user_id == w.users["officerA2"]
    assert entry.source == "198.51.100.7" and entry.at is not None
    assert json.loads(entry.detail) == {"report_id": rep.id, "org_unit_id": w.units["c1"]}
    row = {c.name: getattr(entry, c.name) for c in SecurityEvent.__table__.columns}
    assert not any(NUMBER in str(v) or "5678" in str(v) for v in row.values()), row  # never the number
    # auditors read it in the log, like every security event
    [listed] = security.list_events(w.books, w.actor("auditor"), kind="report_phone_revealed")
    assert listed["detail"]["report_id"] == rep.id
    # the lists still show it in part after a reveal
    assert [r.phone for r in radar.list_reports(w.books, w.actor("officerA2"))] == ["139****5678"]
    # each reveal is one entry of its own
    radar.reveal_phone(w.books, w.actor("officerA"), rep.id)
    assert [e.actor for e in _reveals(w)] == [f"user:{w.users['officerA2']}", f"user:{w.users['officerA']}"]


def test_others_are_refused_and_nothing_is_logged(w):
    rep = _report(w)
    unplaced = _report(w, unit=None)
    before = _all_events(w)
    assert code_of(radar.reveal_phone, w.books, w.actor("officerB"), rep.id) == "report_not_found"  # another street
    assert code_of(radar.reveal_phone, w.books, w.actor("officerA2"), unplaced.id) == "report_not_found"
    for who in ("v1", "leader", "auditor", "admin", "fund", "cashier"):
        assert code_of(radar.reveal_phone, w.books, w.actor(who), rep.id) == "permission_denied", who
    assert code_of(radar.reveal_phone, w.books, w.actor("officerA"), 10_000) == "report_not_found"
    assert code_of(radar.reveal_phone, w.books, w.actor("officerA"), str(rep.id)) == "report_not_found"
    assert _all_events(w) == before and _reveals(w) == []


def test_a_report_without_a_number_or_past_its_retention_has_none_to_reveal(w):
    silent = _report(w, phone=None)
    assert code_of(radar.reveal_phone, w.books, w.actor("officerA"), silent.id) == "report_has_no_phone"
    old = _report(w)
    w.books.clock.advance((radar.RETENTION_DAYS + 1) * 24 * 3600)
    radar.purge_reports(w.books)
    assert code_of(radar.reveal_phone, w.books, w.actor("officerA"), old.id) == "report_has_no_phone"
    assert _reveals(w) == []


def test_an_officer_revealing_number_after_number_is_stopped_for_the_hour_and_it_is_logged(w, clock):
    w.books.settings = w.books.settings.with_overrides({"rate_limits": {"phone_reveals_per_officer": 3}})
    reports = [_report(w, phone=f"1391234{i:04d}") for i in range(4)]  # each its own caller
    for rep in reports[:3]:
        assert radar.reveal_phone(w.books, w.actor("officerA2"), rep.id).report_id == rep.id
    assert code_of(radar.reveal_phone, w.books, w.actor("officerA2"), reports[3].id) == "rate_limited"
    assert len(_reveals(w)) == 3  # the refused one shows no number and is no reveal
    [stopped] = security.list_events(w.books, w.actor("auditor"), kind="rate_limited")
    assert stopped["detail"] == {"what": "report_phone_revealed"} and stopped["user_id"] == w.users["officerA2"]
    # another officer is counted on their own, and the next hour starts afresh
    assert radar.reveal_phone(w.books, w.actor("officerA"), reports[3].id).phone == "13912340003"
    clock.advance(3600)
    assert radar.reveal_phone(w.books, w.actor("officerA2"), reports[3].id).phone == "13912340003"
