"""Statements: opening + entries = closing, closing = the balance at that moment; CSV, JSON and PDF."""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from ledger.audit.reports import balances_at
from ledger.audit.statements import (
    CSV_COLUMNS,
    account_statement,
    find_cjk_font,
    statement_csv,
    statement_json,
    statement_pdf,
)
from ledger.errors import DomainError
from ledger.infra.settings import Calendar
from ledger.journal.accounts import get_account, open_account, post
from ledger.journal.posting import hold, post_hold, transfer, void_hold
from ledger.schema import Entry, Transfer
from tests import needs

DAY0 = dt.date(2026, 11, 1)

LOCAL_TZ = Calendar().tz  # the default calendar's zone (UTC+8), which the test books use
day_start = Calendar().day_start


def at_day(day: int, n: int) -> dt.datetime:
    """Noon local time of DAY0 + day, plus n seconds, in UTC."""
    local = dt.datetime.combine(DAY0 + dt.timedelta(days=day), dt.time(12), LOCAL_TZ) + dt.timedelta(seconds=n)
    return local.astimezone(dt.timezone.utc)


def stamp(books, transfer_ids: list[int], moment: dt.datetime) -> None:
    """Move posted rows to ``moment`` (timestamps are set by the database and are not hashed)."""
    with books.session() as s:
        s.execute(update(Entry).where(Entry.transfer_id.in_(transfer_ids)).values(created_at=moment))
        s.execute(update(Transfer).where(Transfer.id.in_(transfer_ids)).values(created_at=moment))


def make_chart(books, tag: str) -> dict[str, int]:
    ids = {k: open_account(books, f"{k}:{tag}", kind).id for k, kind in (
        ("donations", "donations"), ("fund", "fund"), ("wallet", "wallet"), ("wallet2", "wallet"),
        ("merchant", "merchant"))}
    return ids


OPS = st.lists(
    st.tuples(st.sampled_from(["award", "award2", "redeem", "refund", "hold_post", "hold_void", "donate"]),
              st.integers(1, 60), st.integers(0, 2)),
    min_size=1, max_size=14)


def run_history(books, ids: dict[str, int], ops, tag: str) -> None:
    seed = post(books, transfer(f"seed:{tag}", "donate", ids["donations"], ids["fund"], 100_000))
    stamp(books, [seed[0].id], at_day(0, -1))
    day = 0
    for i, (op, amount, step) in enumerate(ops):
        day += step
        key = f"{tag}:{i}"
        try:
            if op == "award":
                done = post(books, transfer(key, "award", ids["fund"], ids["wallet"], amount, actor="officer:1"))
            elif op == "award2":
                done = post(books, transfer(key, "award", ids["fund"], ids["wallet2"], amount, actor="officer:2"))
            elif op == "redeem":
                done = post(books, transfer(key, "redeem", ids["wallet"], ids["merchant"], amount))
            elif op == "refund":
                done = post(books, transfer(key, "refund", ids["merchant"], ids["wallet"], amount))
            elif op == "donate":
                done = post(books, transfer(key, "donate", ids["donations"], ids["fund"], amount))
            else:
                done = post(books, hold(key, "redeem", ids["wallet"], ids["merchant"], amount, 600))
                if op == "hold_post":
                    done += post(books, post_hold(key + ":p", key, max(1, amount // 2)))
                else:
                    done += post(books, void_hold(key + ":v", key))
        except DomainError as exc:
            assert exc.code in ("insufficient_funds", "linked_transfer_failed")
            continue
        stamp(books, [t.id for t in done], at_day(day, i))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS, start=st.integers(0, 8), length=st.integers(0, 10))
def test_statement_sums_for_random_histories(books, ops, start, length):
    tag = uuid.uuid4().hex[:8]
    ids = make_chart(books, tag)
    run_history(books, ids, ops, tag)
    from_day, to_day = DAY0 + dt.timedelta(days=start), DAY0 + dt.timedelta(days=start + length)
    end = day_start(to_day + dt.timedelta(days=1))
    with books.session(readonly=True) as s:
        at_end = {r.account_id: r.balance for r in balances_at(s, end - dt.timedelta(microseconds=1))}
        at_start = {r.account_id: r.balance for r in balances_at(s, day_start(from_day) - dt.timedelta(microseconds=1))}
    for name, account_id in ids.items():
        stmt = account_statement(books, f"{name}:{tag}", from_day, to_day)
        running = stmt.opening_balance
        for line in stmt.lines:
            running += line.change
            assert line.balance_after == running
            assert from_day <= line.created_at.astimezone(LOCAL_TZ).date() <= to_day
        assert stmt.closing_balance == running == stmt.opening_balance + stmt.total_in - stmt.total_out
        assert stmt.opening_balance == at_start[account_id]
        assert stmt.closing_balance == at_end[account_id]
    # a period that runs past the last entry closes at the account's balance now
    for name, account_id in ids.items():
        whole = account_statement(books, account_id, DAY0 - dt.timedelta(days=1), DAY0 + dt.timedelta(days=60))
        assert whole.opening_balance == 0
        assert whole.closing_balance == get_account(books, account_id).balance
        assert len(whole.lines) == get_account(books, account_id).entry_count


@pytest.fixture
def history(books):
    ids = make_chart(books, "t")
    with books.session() as s:
        from ledger.schema import Account

        s.get(Account, ids["wallet"]).name = "张三的钱包"
    a = post(books, transfer("d", "donate", ids["donations"], ids["fund"], 1000, reason="捐赠"))
    b = post(books, transfer("w", "award", ids["fund"], ids["wallet"], 100, actor="officer:1",
                             reference="claim:7", reason="巡逻奖励"))
    c = post(books, transfer("r", "redeem", ids["wallet"], ids["merchant"], 30, reference="redemption:1",
                             reason="=SUM(A1)"))
    stamp(books, [a[0].id], at_day(0, 0))
    stamp(books, [b[0].id], at_day(1, 0))
    stamp(books, [c[0].id], at_day(3, 0))
    return ids


def test_period_opening_comes_from_the_last_entry_before_it(books, history):
    stmt = account_statement(books, "wallet:t", DAY0 + dt.timedelta(days=2), DAY0 + dt.timedelta(days=5))
    assert (stmt.opening_balance, stmt.closing_balance) == (100, 70)
    [line] = stmt.lines
    assert (line.kind, line.change, line.counterparty_code, line.reference) == ("redeem", -30, "merchant:t",
                                                                                "redemption:1")
    before = account_statement(books, history["wallet"], DAY0, DAY0)
    assert (before.opening_balance, before.closing_balance, before.lines) == (0, 0, [])


def test_csv_has_bom_and_fixed_columns(books, history):
    import csv

    data = statement_csv(account_statement(books, "wallet:t", DAY0, DAY0 + dt.timedelta(days=5)))
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data[3:].decode("utf-8"))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert all(len(r) == len(CSV_COLUMNS) for r in rows)
    col = {name: i for i, name in enumerate(CSV_COLUMNS)}
    assert rows[1][col["kind"]] == "opening" and rows[-1][col["kind"]] == "closing"
    assert rows[-1][col["balance_after"]] == "70"
    award = rows[2]
    assert (award[col["kind"]], award[col["change"]], award[col["reason"]], award[col["date"]]) == (
        "award", "100", "巡逻奖励", "2026-11-02")
    assert rows[3][col["reason"]] == "'=SUM(A1)"  # no formula injection into a spreadsheet


def test_json_statement(books, history):
    body = json.loads(statement_json(account_statement(books, "wallet:t", DAY0, DAY0 + dt.timedelta(days=5))))
    assert (body["account_code"], body["opening_balance"], body["closing_balance"]) == ("wallet:t", 0, 70)
    assert [ln["change"] for ln in body["lines"]] == [100, -30]


def test_pdf_has_extractable_chinese_text(books, history):
    needs.cjk_font()
    from pypdf import PdfReader

    data = statement_pdf(account_statement(books, "wallet:t", DAY0, DAY0 + dt.timedelta(days=5)))
    assert data.startswith(b"%PDF")
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
    for expected in ("金豆对账单", "张三的钱包", "期初余额", "期末余额", "奖励", "巡逻奖励", "兑换"):
        assert expected in text, expected


def test_pdf_without_a_font_is_a_clear_refusal(books, history, monkeypatch, tmp_path):
    monkeypatch.setenv("GOLDBEAN_CJK_FONT", str(tmp_path / "missing.ttf"))
    with pytest.raises(DomainError) as info:
        statement_pdf(account_statement(books, "wallet:t", DAY0, DAY0))
    assert info.value.code == "cjk_font_missing"


def test_account_named_by_username_or_unknown(books, history):
    from ledger.access.identity import create_user_in

    with books.session() as s:
        user = create_user_in(s, "xiaoli", "pw-xiaoli-123", "小李")
        wallet_code = f"wallet:user:{user.id}"
    stmt = account_statement(books, "xiaoli", DAY0, DAY0)
    assert stmt.account_code == wallet_code
    with pytest.raises(DomainError) as info:
        account_statement(books, "nobody-here", DAY0, DAY0)
    assert info.value.code == "account_not_found"
    with pytest.raises(DomainError) as info:
        account_statement(books, "wallet:t", DAY0, DAY0 - dt.timedelta(days=1))
    assert info.value.code == "validation_failed"


def test_csv_neutralises_every_text_column(books):
    """Every free-text cell (reference, idempotency key, counterparty code, actor, reason) is kept from being a
    formula, whatever the column; numbers stay numbers."""
    import csv

    ids = make_chart(books, "x")
    evil = open_account(books, "=HYPERLINK(\"http://evil.example\")", "wallet")
    post(books, transfer("d", "donate", ids["donations"], ids["fund"], 1000))
    post(books, transfer("+cmd|' /C calc'!A0", "award", ids["fund"], evil.id, 40, actor="@SUM(1+1)",
                         reference="-2+3", reason="\t=1+1"))
    post(books, transfer("k2", "award", ids["fund"], evil.id, 2, reference="＝1+1", reason=" =1+1"))
    today = dt.datetime.now(LOCAL_TZ).date()
    data = statement_csv(account_statement(books, evil.id, today - dt.timedelta(days=1), today + dt.timedelta(days=1)))
    rows = list(csv.reader(io.StringIO(data[3:].decode("utf-8"))))
    col = {name: i for i, name in enumerate(CSV_COLUMNS)}
    first, second = rows[2], rows[3]
    assert first[col["transfer_key"]] == "'+cmd|' /C calc'!A0"
    assert first[col["actor"]] == "'@SUM(1+1)"
    assert first[col["reference"]] == "'-2+3"
    assert first[col["reason"]] == "'\t=1+1"
    assert first[col["change"]] == "40"  # numbers are not text
    assert second[col["reference"]] == "'＝1+1" and second[col["reason"]] == "' =1+1"
    formula_starts = tuple("=+-@\t\r\n＝＋－＠")
    for row in rows[1:]:
        for i, cell in enumerate(row):
            if i not in (col["change"], col["pending_change"], col["amount"], col["balance_after"]):
                assert not cell.lstrip(" ").startswith(formula_starts), (CSV_COLUMNS[i], cell)


def test_pdf_works_with_the_font_installed_with_the_project(books, history, monkeypatch, caplog):
    """No system font and no GOLDBEAN_CJK_FONT: the font that `make install` brings is used; and fontTools
    writes no INFO lines while subsetting it."""
    import logging

    from pypdf import PdfReader

    import ledger.infra.fonts as statements

    monkeypatch.delenv("GOLDBEAN_CJK_FONT", raising=False)
    monkeypatch.setattr(statements, "CJK_FONT_CANDIDATES", ())
    assert statements.bundled_cjk_font() is not None and find_cjk_font() == statements.bundled_cjk_font()
    logging.getLogger("fontTools").setLevel(logging.NOTSET)
    with caplog.at_level(logging.INFO):
        data = statement_pdf(account_statement(books, "wallet:t", DAY0, DAY0 + dt.timedelta(days=5)))
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
    assert "金豆对账单" in text and "巡逻奖励" in text
    assert not [r for r in caplog.records if r.name.startswith("fontTools") and r.levelno < logging.WARNING]
