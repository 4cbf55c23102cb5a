"""``UTCDateTime``: every instant is stored and compared in UTC, on SQLite as on PostgreSQL."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, text

from ledger.access.models import SecurityEvent
from ledger.access.security import record_in

UTC = dt.timezone.utc
KUNMING = dt.timezone(dt.timedelta(hours=8))


def test_an_offset_is_honoured_on_the_way_in_and_utc_comes_out(books):
    sent = dt.datetime(2026, 11, 29, 20, 0, tzinfo=KUNMING)  # 12:00 UTC
    with books.session() as s:
        record_in(s, "sign_in_ok", at=sent, username="aware")
        record_in(s, "sign_in_ok", at=dt.datetime(2026, 11, 29, 13, 0), username="naive")  # naive means UTC
    with books.session(readonly=True) as s:
        got = dict(s.execute(select(SecurityEvent.username, SecurityEvent.at)).all())
        assert got["aware"] == sent and got["aware"].tzinfo == UTC
        assert got["naive"] == dt.datetime(2026, 11, 29, 13, 0, tzinfo=UTC)
        count = lambda *where: s.scalar(select(func.count()).select_from(SecurityEvent).where(*where))
        # compared as instants, whatever offset the bound value carries
        assert count(SecurityEvent.at <= dt.datetime(2026, 11, 29, 12, 0, tzinfo=UTC)) == 1
        assert count(SecurityEvent.at < dt.datetime(2026, 11, 29, 19, 59, 59, tzinfo=KUNMING)) == 0
        if books.dialect == "sqlite":  # the same text as rows written before: UTC digits without a zone
            raw = s.execute(text("SELECT at FROM security_events WHERE username = 'aware'")).scalar()
            assert raw.startswith("2026-11-29 12:00:00")
