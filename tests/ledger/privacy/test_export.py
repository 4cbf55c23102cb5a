"""My data: the export holds every kind of record the system keeps about a person (profile, roles, consents,
sign-up, claims and tips, awards, patrol shifts, service records and certificates, survey respondent rows,
security-log events, wallet history) and nothing of another person; never a password hash."""

from __future__ import annotations

import datetime as dt
import json

from ledger import earning, patrols, privacy, service, surveys
from ledger.access import security
from ledger.people import recruitment
from tests.ledger.people.test_recruitment import signup
from tests.ledger.surveys.test_surveys import answers_for, new_survey
from tests.patrol_world import build_patrol_world


def _seed(books, clock):
    """v1 patrols a shift (paid, service record, certificate), answers a survey, files a tip, gets a direct
    award and a failed sign-in; a resident signs up and is approved (consent, sign-up row)."""
    pw = build_patrol_world(books)
    w, v1 = pw.w, pw.w.actor("v1")
    patrols.sign_up(books, v1, pw.shift_id)
    clock.now = pw.start
    patrols.check_in(books, v1, pw.shift_id, pw.by_code())
    clock.now = pw.end
    patrols.check_out(books, v1, pw.shift_id, pw.by_code())
    day = pw.start.date()  # the local day is this or the next; the period covers both
    service.issue_certificate(books, v1, first_day=day - dt.timedelta(days=1), last_day=day + dt.timedelta(days=1))
    survey = new_survey(w)
    surveys.publish_survey(books, w.actor("officerA2"), survey.id)
    surveys.answer_survey(books, v1, survey.id, answers_for(survey))
    earning.submit_claim(books, v1, kind="tip", volunteer_id=w.users["v1"], category="theft",
                         description="v1 saw a bike lock cut", location="building 1", police_case_ref="PL-1",
                         occurred_at=books.now() - dt.timedelta(hours=1))
    earning.award_directly(books, w.actor("officerA2"), volunteer_id=w.users["v1"], org_unit_id=w.units["c1"],
                           amount=7, reference="duty-1", reason="flood watch")
    security.record(books, "sign_in_failed", user_id=w.users["v1"], source="10.0.0.1")
    security.record(books, "sign_in_failed", user_id=w.users["v2"], source="10.0.0.2")
    pending = signup(w)
    resident = recruitment.approve_signup(books, w.actor("officerA2"), pending.id)
    return w, resident


def test_the_export_holds_every_kind_of_record_and_nothing_of_another_person(books, clock) -> None:
    w, _ = _seed(books, clock)
    data = privacy.my_data(books, w.actor("v1"))
    uid = w.users["v1"]
    assert data["profile"]["id"] == uid and data["profile"]["username"] == "v1"
    assert "password_hash" not in data["profile"]
    for section in ("roles", "claims", "awards", "patrol_signups", "service_records", "service_certificates",
                    "survey_respondents", "security_events"):
        assert data[section], section
    assert {c["kind"] for c in data["claims"]} == {"tip"}
    assert any(a["reason"] == "flood watch" for a in data["awards"])
    assert all(e["user_id"] == uid for e in data["security_events"])
    kinds = {line["kind"] for line in data["wallet"]["entries"]}
    assert "award" in kinds and data["wallet"]["balance"] > 0
    for section in ("claims", "awards", "patrol_signups", "service_records", "service_certificates"):
        assert all(r["volunteer_id"] == uid for r in data[section]), section
    assert all(r["user_id"] == uid for r in data["survey_respondents"])
    text = json.dumps(data, ensure_ascii=False)
    assert "10.0.0.2" not in text and "王阿姨" not in text and "13912345678" not in text

    resident = privacy.my_data(books, _resident_actor(w))
    assert resident["signups"] and resident["signups"][0]["name"] == "王阿姨"
    assert resident["consents"] and all("version" in c for c in resident["consents"])
    assert "password_hash" not in resident["signups"][0]
    assert "v1 saw" not in json.dumps(resident, ensure_ascii=False)


def _resident_actor(w):
    from sqlalchemy import select

    from ledger.access.identity import load_actor
    from ledger.schema import User

    with w.books.session(readonly=True) as s:
        return load_actor(s, s.scalar(select(User.id).where(User.phone == "13912345678")))
