"""Any aware datetime sent through the API is the same instant when it comes back, on SQLite and PostgreSQL.

SQLite has no time zones: before ``UTCDateTime`` a claim sent as ``2026-11-29T20:00:00+08:00`` was stored
as the wall-clock digits ``20:00`` and read back as 20:00 UTC, 8 hours late, and an entry stamped in
another offset fell on the wrong side of a statement's or a trial balance's bounds.
"""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from doors import books_of
from ledger.access.tokens import issue_access_token
from ledger.journal.accounts import open_account, post
from ledger.journal.posting import transfer
from tests.earning_world import build_world
from tests.ledger.audit.test_statements import stamp

# offsets people's clocks actually use (whole quarter hours, -12:00 to +14:00)
OFFSETS = st.integers(min_value=-12 * 4, max_value=14 * 4).map(lambda q: dt.timezone(dt.timedelta(minutes=15 * q)))
SERIAL = itertools.count()


@pytest.fixture
def any_app(app_config, db_url):
    """The real app on SQLite and on PostgreSQL."""
    from goldbean.app import create_app

    application = create_app({**app_config, "DATABASE_URL": db_url})
    yield application
    books_of(application).engine.dispose()


@pytest.fixture
def w(any_app):
    return build_world(books_of(any_app))


def _auth(w, name: str) -> dict[str, str]:
    tok, _ = issue_access_token(w.books, w.actor(name))
    return {"Authorization": f"Bearer {tok}"}


def _instant(data: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(data.replace("Z", "+00:00"))
    assert moment.tzinfo is not None, f"{data} names no zone"
    return moment


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ago=st.integers(min_value=60, max_value=80 * 86_400), micro=st.integers(0, 999_999), tz=OFFSETS)
def test_claim_time_reads_back_as_the_same_instant(any_app, w, ago, micro, tz):
    client = any_app.test_client()
    sent = (w.books.now() - dt.timedelta(seconds=ago)).replace(microsecond=micro).astimezone(tz)
    made = client.post("/api/v1/claims", headers=_auth(w, "v1"), json={
        "kind": "tip", "category": "theft", "description": f"bike lock cut #{next(SERIAL)}",
        "location": "building 1", "occurred_at": sent.isoformat()})
    assert made.status_code == 201, made.json
    assert _instant(made.json["occurred_at"]) == sent
    read = client.get(f"/api/v1/claims/{made.json['id']}", headers=_auth(w, "officerA"))
    assert _instant(read.json["occurred_at"]) == sent


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seconds=st.integers(min_value=0, max_value=400 * 86_400), tz=OFFSETS)
def test_statement_and_trial_balance_see_an_entry_at_its_instant(any_app, w, seconds, tz):
    client, books, n = any_app.test_client(), w.books, next(SERIAL)
    at = (dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=seconds)).astimezone(tz)
    src, dst = (open_account(books, f"{side}:{n}", "wallet" if side == "to" else "fund").id for side in ("from", "to"))
    # a fund account may not go negative either: fill it from a donations account first, stamped earlier
    donations = open_account(books, f"donations:{n}", "donations").id
    fill = post(books, transfer(f"fill:{n}", "donate", donations, src, 7))
    stamp(books, [fill[0].id], at - dt.timedelta(days=2))
    moved = post(books, transfer(f"t:{n}", "award", src, dst, 7))
    stamp(books, [moved[0].id], at)
    auditor = _auth(w, "auditor")

    day = books.calendar.today(at)
    stmt = client.get("/api/v1/audit/statement", headers=auditor, query_string={
        "account": f"to:{n}", "from": day.isoformat(), "to": day.isoformat()}).json
    assert [_instant(line["created_at"]) for line in stmt["lines"]] == [at]
    before = client.get("/api/v1/audit/statement", headers=auditor, query_string={
        "account": f"to:{n}", "from": (day - dt.timedelta(days=1)).isoformat(),
        "to": (day - dt.timedelta(days=1)).isoformat()}).json
    assert before["lines"] == []

    def balance_at(moment: dt.datetime) -> tuple[dt.datetime, int]:
        tb = client.get("/api/v1/audit/trial-balance", headers=auditor, query_string={"at": moment.isoformat()}).json
        return _instant(tb["at"]), next(a["balance"] for a in tb["accounts"] if a["code"] == f"to:{n}")

    assert balance_at(at) == (at, 7)
    just_before = at - dt.timedelta(microseconds=1)
    assert balance_at(just_before) == (just_before, 0)
