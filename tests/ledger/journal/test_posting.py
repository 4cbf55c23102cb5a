"""Behaviour of posting: transfers, idempotency, holds, reversals, linked batches, bad input."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from ledger.errors import DomainError
from ledger.journal.accounts import expire_holds, get_account, open_account, post, set_account_status
from ledger.journal.posting import MAX_AMOUNT, TransferRequest, hold, post_hold, reversal, transfer, void_hold
from ledger.journal.verify import verify_books
from ledger.schema import Entry, Transfer


@pytest.fixture
def chart(books):
    ids = {
        "donations": open_account(books, "donations", "donations").id,
        "fund": open_account(books, "fund", "fund").id,
        "budget": open_account(books, "budget:jinsha", "budget").id,
        "wallet": open_account(books, "wallet:1", "wallet").id,
        "merchant": open_account(books, "merchant:1", "merchant").id,
    }
    post(books, transfer("d1", "donate", ids["donations"], ids["fund"], 1000))
    post(books, transfer("a1", "allocate", ids["fund"], ids["budget"], 500))
    post(books, transfer("w1", "award", ids["budget"], ids["wallet"], 100))
    return ids


def counts(books) -> tuple[int, int]:
    with books.session(readonly=True) as s:
        return s.scalar(select(func.count()).select_from(Transfer)), s.scalar(select(func.count()).select_from(Entry))


def refused(books, request, code: str) -> DomainError:
    before = counts(books)
    with pytest.raises(DomainError) as info:
        post(books, request)
    assert info.value.code == code, info.value
    assert counts(books) == before
    return info.value


def test_transfer_moves_beans_and_writes_two_chained_entries(books, chart):
    post(books, transfer("r1", "redeem", chart["wallet"], chart["merchant"], 30))
    wallet, merchant = get_account(books, chart["wallet"]), get_account(books, chart["merchant"])
    assert (wallet.balance, merchant.balance) == (70, 30)
    assert wallet.entry_count == 2 and merchant.entry_count == 1
    assert verify_books(books).ok


def test_overdraft_is_refused_and_changes_nothing(books, chart):
    err = refused(books, transfer("r1", "redeem", chart["wallet"], chart["merchant"], 101), "insufficient_funds")
    assert err.details["account_id"] == chart["wallet"]
    assert get_account(books, chart["wallet"]).balance == 100


def test_donations_account_may_go_negative(books, chart):
    assert get_account(books, chart["donations"]).balance == -1000


def test_retry_returns_original_outcome(books, chart):
    first = post(books, transfer("r1", "redeem", chart["wallet"], chart["merchant"], 60))[0]
    # the wallet could not afford it again, but a retry is not a new transfer
    again = post(books, transfer("r1", "redeem", chart["wallet"], chart["merchant"], 60))[0]
    assert again.replayed and not first.replayed and again.id == first.id
    assert get_account(books, chart["wallet"]).balance == 40


def test_same_id_different_fields_is_refused(books, chart):
    post(books, transfer("r1", "redeem", chart["wallet"], chart["merchant"], 10))
    refused(books, transfer("r1", "redeem", chart["wallet"], chart["merchant"], 11), "exists_with_different_fields")


@pytest.mark.parametrize("amount", [0, -5, MAX_AMOUNT + 1, True, 1.5, "10", 2**70])
def test_bad_amounts_are_refused(books, chart, amount):
    refused(books, transfer("bad", "redeem", chart["wallet"], chart["merchant"], amount), "invalid_amount")


def test_bad_shapes_are_refused(books, chart):
    refused(books, transfer("x" * 101, "redeem", chart["wallet"], chart["merchant"], 1), "validation_failed")
    refused(books, transfer("", "redeem", chart["wallet"], chart["merchant"], 1), "validation_failed")
    refused(books, transfer("k", "steal", chart["wallet"], chart["merchant"], 1), "unknown_transfer_kind")
    refused(books, transfer("k", "redeem", chart["wallet"], chart["wallet"], 1), "same_account")
    refused(books, transfer("k", "redeem", chart["wallet"], 999_999, 1), "account_not_found")
    refused(books, TransferRequest("k", "redeem", "weird", chart["wallet"], chart["merchant"], 1), "validation_failed")


def test_frozen_wallet_cannot_spend_but_can_be_reversed(books, chart):
    set_account_status(books, chart["wallet"], "frozen")
    refused(books, transfer("r1", "redeem", chart["wallet"], chart["merchant"], 1), "wallet_frozen")
    post(books, reversal("rev1", "w1", 40, reason="award was wrong"))
    assert get_account(books, chart["wallet"]).balance == 60


def test_hold_reserves_then_partial_post_releases_the_rest(books, chart):
    post(books, hold("h1", "redeem", chart["wallet"], chart["merchant"], 80, timeout_s=60))
    wallet = get_account(books, chart["wallet"])
    assert (wallet.balance, wallet.available, wallet.on_hold) == (100, 20, 80)
    refused(books, transfer("r2", "redeem", chart["wallet"], chart["merchant"], 21), "insufficient_funds")
    refused(books, post_hold("p1", "h1", 81), "exceeds_pending_amount")
    post(books, post_hold("p1", "h1", 50))
    wallet = get_account(books, chart["wallet"])
    assert (wallet.balance, wallet.available, wallet.on_hold) == (50, 50, 0)
    assert get_account(books, chart["merchant"]).balance == 50
    refused(books, void_hold("v1", "h1"), "pending_transfer_already_resolved")
    assert verify_books(books).ok


def test_void_releases_everything(books, chart):
    post(books, hold("h1", "redeem", chart["wallet"], chart["merchant"], 80, timeout_s=60))
    post(books, void_hold("v1", "h1"))
    assert get_account(books, chart["wallet"]).available == 100
    refused(books, post_hold("p1", "h1"), "pending_transfer_already_resolved")
    refused(books, post_hold("p2", "w1"), "not_a_pending_transfer")
    refused(books, post_hold("p3", "nope"), "pending_transfer_not_found")


def test_expired_holds_are_released_by_the_sweep(books, chart, clock):
    post(books, hold("h1", "redeem", chart["wallet"], chart["merchant"], 80, timeout_s=60))
    post(books, hold("h2", "redeem", chart["wallet"], chart["merchant"], 10, timeout_s=600))
    clock.advance(61)
    refused(books, post_hold("p1", "h1"), "pending_transfer_expired")
    assert expire_holds(books) == 1
    assert expire_holds(books) == 0
    wallet = get_account(books, chart["wallet"])
    assert (wallet.balance, wallet.on_hold) == (100, 10)
    assert verify_books(books).ok


@pytest.mark.parametrize("timeout", [0, -1, 10**9, None])
def test_hold_timeouts_are_bounded(books, chart, timeout):
    refused(books, hold("h", "redeem", chart["wallet"], chart["merchant"], 1, timeout_s=timeout), "invalid_timeout")


def test_reversal_never_exceeds_what_remains(books, chart):
    post(books, reversal("rev1", "w1", 30))
    refused(books, reversal("rev2", "w1", 71), "exceeds_reversible_amount")
    post(books, reversal("rev2", "w1", 70))
    refused(books, reversal("rev3", "w1", 1), "exceeds_reversible_amount")
    refused(books, reversal("rev4", "rev1", 1), "not_reversible")
    assert get_account(books, chart["wallet"]).balance == 0
    assert get_account(books, chart["budget"]).balance == 500


def test_reversal_of_spent_beans_is_refused(books, chart):
    post(books, transfer("r1", "redeem", chart["wallet"], chart["merchant"], 90))
    refused(books, reversal("rev1", "w1", 100), "insufficient_funds")
    post(books, reversal("rev1", "w1", 10))


def test_linked_batch_is_all_or_nothing_and_names_the_failing_member(books, chart):
    batch = [
        transfer("b1", "award", chart["budget"], chart["wallet"], 10),
        transfer("b2", "redeem", chart["wallet"], chart["merchant"], 105),
        transfer("b3", "redeem", chart["wallet"], chart["merchant"], 10_000),
    ]
    err = refused(books, batch, "linked_transfer_failed")
    assert err.details == {"index": 2, "transfer_key": "b3", "cause": "insufficient_funds"}
    batch[2] = transfer("b3", "redeem", chart["wallet"], chart["merchant"], 5)
    results = post(books, batch)
    assert [r.transfer_key for r in results] == ["b1", "b2", "b3"]
    assert get_account(books, chart["wallet"]).balance == 0
    # the whole batch again is a retry
    assert all(r.replayed for r in post(books, batch))
    assert verify_books(books).ok


def test_batch_refuses_duplicate_ids(books, chart):
    batch = [transfer("b1", "award", chart["budget"], chart["wallet"], 10)] * 2
    refused(books, batch, "duplicate_id_in_batch")


def test_a_hold_expires_exactly_at_its_deadline(books, chart, clock):
    post(books, hold("h1", "redeem", chart["wallet"], chart["merchant"], 80, timeout_s=60))
    post(books, hold("h2", "redeem", chart["wallet"], chart["merchant"], 10, timeout_s=60))
    clock.advance(59)
    assert expire_holds(books) == 0
    clock.advance(1)
    refused(books, post_hold("p1", "h1"), "pending_transfer_expired")
    refused(books, void_hold("v1", "h1"), "pending_transfer_expired")
    assert expire_holds(books) == 2
    assert get_account(books, chart["wallet"]).available == 100


HOSTILE_TEXT = ['say "hi"', "back\\slash", "a,b", "{braces}", "NULL", "", " padded ", "金豆 兑换", "quote\\\"mix",
                "new\nline", "tab\there", "emoji 🫘", "'single'"]


@given(texts=st.lists(st.sampled_from(HOSTILE_TEXT) | st.text(max_size=30).filter(lambda t: "\x00" not in t),
                      min_size=2, max_size=6))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_text_in_a_batch_is_stored_exactly_and_hashed_as_stored(books, chart, texts) -> None:
    """On PostgreSQL a batch travels as array literals written by the ledger itself: whatever the text
    in keys, actors, reasons and references, what is stored is what was sent, and the chains verify."""
    base = counts(books)[0]
    reqs = [transfer(f"k{base}-{i}-{t}"[:100], "donate", chart["donations"], chart["fund"], 1, actor=t[:80] or "a",
                     reason=t, reference=t or None) for i, t in enumerate(texts)]
    post(books, reqs)
    with books.session(readonly=True) as s:
        stored = {r.transfer_key: r for r in s.scalars(select(Transfer).where(
            Transfer.transfer_key.in_([r.transfer_key for r in reqs])))}
    for r in reqs:
        row = stored[r.transfer_key]
        assert (row.actor, row.reason, row.reference, row.batch_key) == (r.actor, r.reason, r.reference,
                                                                         reqs[0].transfer_key)
    report = verify_books(books)
    assert report.ok, report
