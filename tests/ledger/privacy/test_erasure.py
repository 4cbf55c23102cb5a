"""Erasure: a volunteer with awards, a redemption, a tip and a service certificate asks; staff of their
community complete it. Afterwards no table and no file under the instance folder holds their name, phone or
tip text; the wallet's rest went back to the community budget by a recorded transfer; `ledger verify` passes
and a journal export made before the erasure still verifies offline. Refusals change nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ledger import earning, errors, notify, patrols, privacy, radar, redemption, service
from ledger.access import security
from ledger.access.identity import authenticate, budget_account_id, wallet_account_id
from ledger.errors import DomainError
from ledger.infra.base import Base
from ledger.journal.accounts import get_account
from ledger.journal.export import export_journal, trusted_keys, verify_export
from ledger.journal.verify import verify_books
from ledger.redemption import TillContext, codes
from ledger.schema import Merchant, Notification, User
from tests.patrol_world import build_patrol_world

NAME, PHONE, TIP = "李秀英", "13877776666", "李秀英看见有人撬锁"
RADAR_TIP = "李秀英在菜市场门口见过走失的老人"


def _seed(books, clock):
    pw = build_patrol_world(books)
    w = pw.w
    uid = w.users["v1"]
    with books.session() as s:
        user = s.get(User, uid)
        user.display_name, user.phone = NAME, PHONE
    v1 = w.actor("v1")
    patrols.sign_up(books, v1, pw.shift_id)
    clock.now = pw.start
    patrols.check_in(books, v1, pw.shift_id, pw.by_code())
    clock.now = pw.end
    patrols.check_out(books, v1, pw.shift_id, pw.by_code())
    day = pw.start.date()
    service.issue_certificate(books, v1, first_day=day - dt.timedelta(days=1), last_day=day + dt.timedelta(days=1))
    earning.submit_claim(books, v1, kind="tip", volunteer_id=uid, category="theft", description=TIP,
                         location="老槐树下第三个垃圾桶", police_case_ref="PL-9", occurred_at=books.now() - dt.timedelta(hours=1))
    earning.award_directly(books, w.actor("officerA2"), volunteer_id=uid, org_unit_id=w.units["c1"], amount=40,
                           reference="duty-1", reason="flood watch")
    notice = radar.publish_notice(books, w.actor("officerA2"), kind="寻人", title="寻人", body="一位老人走失",
                                  area=[w.units["c1"]], ends_at=books.now() + dt.timedelta(days=2))
    radar.answer_notice(books, v1, notice.id, text=RADAR_TIP, place="菜市场", photo=_photo())
    with books.session(readonly=True) as s:
        mid = s.scalar(select(Merchant.id).where(Merchant.code == "shop"))
        wallet = wallet_account_id(s, uid)
    code = codes.issue_wallet_code(books, wallet).code
    redemption.redeem(books, TillContext(mid, w.actor("cashier")), code=code, amount=5, idempotency_key="r1")
    with pytest.raises(DomainError):
        authenticate(books, PHONE, "wrong password")
    security.record(books, "sign_in_failed", username=PHONE, source="10.9.9.9")
    return w, wallet


def _photo() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


def _all_text(books) -> str:
    parts = []
    with books.session(readonly=True) as s:
        for table in Base.metadata.sorted_tables:
            for row in s.execute(select(table)):
                parts.extend(str(v) for v in row if v is not None)
    return "\n".join(parts)


def _files_text(folder: Path) -> bytes:
    return b"\n".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())


def test_erasure_leaves_no_trace_and_the_books_still_verify(books, clock, tmp_path) -> None:
    w, wallet = _seed(books, clock)
    uid = w.users["v1"]
    assert NAME in _all_text(books) and TIP in _all_text(books) and RADAR_TIP in _all_text(books)
    if books.engine.dialect.name == "sqlite":  # the database's own files are searched too
        assert TIP.encode() in _files_text(tmp_path)
    before = tmp_path.parent / f"{tmp_path.name}-auditor-copy.jsonl"  # an auditor's copy, outside the instance
    export_journal(books, before)
    rest = get_account(books, wallet).balance
    assert rest > 0
    with books.session(readonly=True) as s:
        budget = budget_account_id(s, w.units["c1"])
    budget_before = get_account(books, budget).balance
    assert notify.inbox(books, w.actor("v1")).items  # the award told them

    req = privacy.request_erasure(books, w.actor("v1"))
    with pytest.raises(DomainError) as info:
        privacy.request_erasure(books, w.actor("v1"))
    assert info.value.code == errors.ERASURE_ALREADY_REQUESTED.code
    with pytest.raises(DomainError) as info:
        privacy.complete_erasure(books, w.actor("officerB"), req.id)  # another street's officer
    assert info.value.code == errors.OUT_OF_SCOPE.code
    assert [r.id for r in privacy.list_erasures(books, w.actor("officerA2"))] == [req.id]
    done = privacy.complete_erasure(books, w.actor("officerA2"), req.id)
    assert done.status == "completed" and done.returned_beans == rest
    assert get_account(books, wallet).balance == 0
    assert get_account(books, budget).balance == budget_before + rest

    text = _all_text(books)
    for secret in (NAME, PHONE, TIP, RADAR_TIP, "菜市场门口", "老槐树下第三个垃圾桶", "10.9.9.9"):
        assert secret not in text, secret
    files = _files_text(tmp_path)
    for secret in (NAME, PHONE, TIP):
        assert secret.encode() not in files, secret
    with books.session(readonly=True) as s:
        user = s.get(User, uid)
        assert not user.active and user.username == f"erased-{uid}" and user.phone is None
        assert user.adult_from is None and user.pseudonym is None and user.password_hash == "!"
        assert s.scalar(select(func.count()).select_from(Notification).where(Notification.user_id == uid)) == 0
    assert verify_books(books).ok
    assert verify_export(before, trusted_keys(books)).ok
    with pytest.raises(DomainError) as info:
        privacy.complete_erasure(books, w.actor("officerA2"), req.id)
    assert info.value.code == errors.ERASURE_COMPLETED.code
    kinds = [e["kind"] for e in privacy.my_data(books, w.actor("admin"))["security_events"]]
    assert kinds is not None


def test_erasure_is_refused_while_beans_are_on_hold(books, clock) -> None:
    w, wallet = _seed(books, clock)
    from ledger.journal.accounts import post_in
    from ledger.journal.posting import hold
    with books.session(readonly=True) as s:
        budget = budget_account_id(s, w.units["c1"])
    books.run(lambda s: post_in(s, books, [hold("h1", "redeem", wallet, budget, 3, 3600)]))
    req = privacy.request_erasure(books, w.actor("v1"))
    with pytest.raises(DomainError) as info:
        privacy.complete_erasure(books, w.actor("officerA2"), req.id)
    assert info.value.code == errors.ERASURE_BEANS_ON_HOLD.code
    with books.session(readonly=True) as s:
        assert s.get(User, w.users["v1"]).display_name == NAME


def test_the_security_log_allows_only_blanking_personal_fields(books) -> None:
    """Migration 0013: an erasure may blank username, source and detail; any other change is still refused."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    security.record(books, "sign_in_failed", username=PHONE, source="10.0.0.1", actor="test", note="x")
    for statement in ("UPDATE security_events SET source = '10.0.0.2'",
                      "UPDATE security_events SET kind = 'forged', username = NULL, source = NULL, detail = '{}'",
                      "DELETE FROM security_events"):
        with pytest.raises(DBAPIError, match="append-only"):
            with books.engine.begin() as conn:
                conn.execute(text(statement))
    with books.engine.begin() as conn:
        conn.execute(text("UPDATE security_events SET username = NULL, source = NULL, detail = '{}'"))
    with books.engine.connect() as conn:
        row = conn.execute(text("SELECT kind, username, source, detail, actor FROM security_events")).one()
    assert tuple(row) == ("sign_in_failed", None, None, "{}", "test")
