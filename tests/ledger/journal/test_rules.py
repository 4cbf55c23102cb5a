"""The posting rules alone (``ledger.journal.rules``): plain objects, no database.

The state machines next to this file check the same rules end to end on both databases; these pin each
rule on its own, and that applying a transfer, its entries and the verifiers' checks agree.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import DomainError
from ledger.journal.chain import entry_hash, genesis_hash
from ledger.journal.posting import hold, post_hold, reversal, transfer, void_hold
from ledger.journal.rules import (
    MAX_AMOUNT,
    AccountState,
    TransferRequest,
    apply,
    check_batch,
    check_shape,
    copy_state,
    entries_for,
    entries_problem,
    phase_deltas,
    reconcile_balances,
    resolution_problem,
    resolve_accounts,
    reversal_problem,
    transfer_row,
    trial,
)

NOW = dt.datetime(2026, 11, 29, 8, 0, tzinfo=dt.timezone.utc)
FUND, WALLET, MERCHANT = 1, 2, 3


def state(account_id: int, kind: str = "wallet", *, credits: int = 0, debits: int = 0, status: str = "open",
          no_negative: bool = True) -> AccountState:
    return AccountState(account_id, kind, status, no_negative, 0, debits, 0, credits, 0,
                        genesis_hash(account_id, f"acc:{account_id}", kind))


def books(wallet_beans: int = 100, **wallet: object) -> dict[int, AccountState]:
    return {FUND: state(FUND, "fund", no_negative=False), WALLET: state(WALLET, credits=wallet_beans, **wallet),
            MERCHANT: state(MERCHANT, "merchant")}


def stored(ident: int, req: TransferRequest, *, expires_at: dt.datetime | None = None) -> SimpleNamespace:
    """A transfer as the database hands it back (what ``named`` holds)."""
    return SimpleNamespace(id=ident, transfer_key=req.transfer_key, kind=req.kind, phase=req.phase,
                           debit_account_id=req.debit_account_id, credit_account_id=req.credit_account_id,
                           amount=req.amount, expires_at=expires_at)


def run(req: TransferRequest, accounts: dict[int, AccountState], named: dict | None = None,
        reversed_so_far: dict | None = None, now: dt.datetime = NOW) -> list[dict]:
    """Resolve, apply and make the entries of one request, as the careful path of ``post_batch`` does."""
    named = named or {}
    resolved = resolve_accounts(req, named)
    row = transfer_row(resolved, named, None, now)
    deltas = apply(resolved, row, named, accounts, {} if reversed_so_far is None else reversed_so_far, now)
    return entries_for(7, resolved, row, deltas, accounts)


def code(exc: pytest.ExceptionInfo) -> str:
    return exc.value.code


# --- what a phase does ----------------------------------------------------------------------------------

def test_phase_deltas():
    assert phase_deltas("single", 5) == (0, 5)
    assert phase_deltas("pending", 5) == (5, 0)
    assert phase_deltas("post", 3, 5) == (-5, 3)
    assert phase_deltas("void", 5, 5) == (-5, 0)
    assert phase_deltas("expire", 5, 5) == (-5, 0)
    with pytest.raises(AssertionError):
        phase_deltas("void", 5)  # a resolution without its hold is a bug, never a guess


def test_resolution_and_reversal_rules():
    hold_ = (20, WALLET, MERCHANT)
    assert resolution_problem("post", 15, WALLET, MERCHANT, hold_) is None
    assert resolution_problem("void", 20, WALLET, MERCHANT, hold_) is None
    assert "other accounts" in resolution_problem("void", 20, WALLET, FUND, hold_)
    assert resolution_problem("void", 15, WALLET, MERCHANT, hold_) == "voids 15 of a hold of 20"
    assert resolution_problem("post", 21, WALLET, MERCHANT, hold_) == "posts 21 of a hold of 20"
    assert "not an open hold" in resolution_problem("post", 1, WALLET, MERCHANT, None)
    assert reversal_problem("single", True, 10, 10) is None
    assert "more than" in reversal_problem("single", True, 10, 11)
    assert "cannot be reversed" in reversal_problem("single", False, 10, 1)
    assert "pending" in reversal_problem("pending", True, 10, 1)


def test_entries_problem_names_the_wrong_entry():
    good = [("D", WALLET, 0, 5), ("C", MERCHANT, 0, 5)]
    assert entries_problem("single", 5, WALLET, MERCHANT, None, good) is None
    assert entries_problem("single", 5, WALLET, MERCHANT, None, [good[0], ("C", MERCHANT, 0, 6)])[0] == 1
    assert entries_problem("single", 5, WALLET, MERCHANT, None, good[:1])[0] is None
    assert entries_problem("nonsense", 5, WALLET, MERCHANT, None, good)[0] is None


def test_reconcile_balances():
    assert reconcile_balances({"donations": -100, "fund": 60, "wallet": 40}) == (
        100, {"fund": 60, "budget": 0, "wallet": 40, "merchant": 0, "payout": 0, "expiry": 0, "adjustment": 0}, 100, 0)


# --- shapes ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("req, expected", [
    (transfer("", "award", 1, 2, 5), "validation_failed"),
    (transfer("k", "award", 1, 2, 0), "invalid_amount"),
    (transfer("k", "award", 1, 2, MAX_AMOUNT + 1), "invalid_amount"),
    (transfer("k", "award", 1, 2, True), "invalid_amount"),  # a bool is not an amount
    (transfer("k", "gift", 1, 2, 5), "unknown_transfer_kind"),
    (transfer("k", "reverse", 1, 2, 5), "unknown_transfer_kind"),  # reversals name what they reverse
    (transfer("k", "award", 1, 1, 5), "same_account"),
    (hold("k", "redeem", 1, 2, 5, 0), "invalid_timeout"),
    (TransferRequest("k", "", "void", amount=3, pending_key="h"), "validation_failed"),
    (TransferRequest("k", "", "post"), "validation_failed"),
    (TransferRequest("k", "award", "later", 1, 2, 5), "validation_failed"),
])
def test_check_shape_refuses(req, expected):
    with pytest.raises(DomainError) as exc:
        check_shape(req)
    assert code(exc) == expected


def test_check_batch_names_the_failing_transfer_of_a_linked_batch():
    with pytest.raises(DomainError) as exc:
        check_batch([transfer("a", "award", 1, 2, 5), transfer("b", "award", 1, 2, 0)])
    assert code(exc) == "linked_transfer_failed" and exc.value.details["index"] == 1
    with pytest.raises(DomainError) as exc:
        check_batch([transfer("a", "award", 1, 2, 5)] * 2)
    assert code(exc) == "duplicate_id_in_batch"
    with pytest.raises(DomainError) as exc:
        check_batch([])
    assert code(exc) == "batch_empty"


# --- applying transfers ---------------------------------------------------------------------------------

def test_a_single_transfer_moves_both_totals_and_chains_both_accounts():
    accounts = books()
    head_before = accounts[WALLET].chain_head
    entries = run(transfer("r1", "redeem", WALLET, MERCHANT, 30), accounts)
    w, m = accounts[WALLET], accounts[MERCHANT]
    assert (w.debits_posted, m.credits_posted) == (30, 30)
    assert [e["side"] for e in entries] == ["D", "C"]
    debit = entries[0]
    assert (debit["seq"], debit["prev_hash"], debit["balance_after"]) == (1, head_before, 70)
    assert debit["hash"] == w.chain_head == entry_hash(
        head_before, account_id=WALLET, seq=1, transfer_key="r1", kind="redeem", phase="single", side="D",
        counterparty_id=MERCHANT, amount=30, pending_delta=0, posted_delta=30, balance_after=70, actor="system",
        reason="", reference=None)
    assert w.touched and m.touched and not accounts[FUND].touched


def test_no_wallet_goes_negative_and_holds_count():
    accounts = books(50)
    run(hold("h", "redeem", WALLET, MERCHANT, 40, 600), accounts)
    with pytest.raises(DomainError) as exc:
        run(transfer("r", "redeem", WALLET, MERCHANT, 11), accounts)
    assert code(exc) == "insufficient_funds" and exc.value.details["available"] == 10


@pytest.mark.parametrize("status, kind, expected", [
    ("frozen", "redeem", "wallet_frozen"), ("closed", "redeem", "account_closed"),
    ("frozen", "adjust", None), ("closed", "adjust", "account_closed")])
def test_account_status(status, kind, expected):
    accounts = books(status=status)
    req = transfer("t", kind, WALLET, MERCHANT, 5)
    if expected is None:
        run(req, accounts)
        return
    with pytest.raises(DomainError) as exc:
        run(req, accounts)
    assert code(exc) == expected


def held_books(amount: int = 40, *, status: str = "open") -> tuple[dict[int, AccountState], dict]:
    accounts = books(100)
    h = hold("h", "redeem", WALLET, MERCHANT, amount, 600)
    run(h, accounts)
    accounts[WALLET].status = status
    return accounts, {"h": stored(11, h, expires_at=NOW + dt.timedelta(seconds=600))}


def test_post_part_of_a_hold_releases_the_rest():
    accounts, named = held_books()
    entries = run(post_hold("p", "h", 25), accounts, named)
    w = accounts[WALLET]
    assert (w.debits_pending, w.debits_posted) == (0, 25)
    assert {(e["pending_delta"], e["posted_delta"]) for e in entries} == {(-40, 25)}


def test_void_releases_exactly_the_hold_even_on_a_closed_wallet():
    accounts, named = held_books(status="closed")
    entries = run(void_hold("v", "h"), accounts, named)
    assert accounts[WALLET].debits_pending == 0 and accounts[MERCHANT].credits_pending == 0
    assert entries_problem("void", 40, WALLET, MERCHANT, 40,
                           [(e["side"], e["account_id"], e["pending_delta"], e["posted_delta"]) for e in entries]) is None


@pytest.mark.parametrize("req, later, expected", [
    (post_hold("p", "h", 41), 0, "exceeds_pending_amount"),
    (post_hold("p", "h"), 600, "pending_transfer_expired"),
    (void_hold("v", "h"), 600, "pending_transfer_expired"),
    (TransferRequest("x", "", "expire", pending_key="h"), 599, "validation_failed"),  # not yet
])
def test_hold_resolutions_refused(req, later, expected):
    accounts, named = held_books()
    with pytest.raises(DomainError) as exc:
        run(req, accounts, named, now=NOW + dt.timedelta(seconds=later))
    assert code(exc) == expected


def test_reversals_never_beyond_the_original_nor_of_a_reversal():
    accounts = books(100)
    aw = transfer("aw", "award", FUND, WALLET, 30)
    run(aw, accounts)
    named = {"aw": stored(5, aw)}
    so_far: dict[int, int] = {}
    run(reversal("rv1", "aw", 20), accounts, named, so_far)
    assert so_far == {5: 20} and accounts[WALLET].debits_posted == 20
    with pytest.raises(DomainError) as exc:
        run(reversal("rv2", "aw", 11), accounts, named, so_far)
    assert code(exc) == "exceeds_reversible_amount" and exc.value.details["remaining"] == 10
    rv = stored(6, resolve_accounts(reversal("rv1", "aw", 20), named))
    with pytest.raises(DomainError) as exc:
        run(reversal("rv3", "rv1", 1), accounts, {"rv1": rv})
    assert code(exc) == "not_reversible"


def test_the_trial_leaves_the_locked_state_untouched_and_gives_up_on_any_refusal():
    accounts = books(50)
    reqs = [transfer("a", "redeem", WALLET, MERCHANT, 20), transfer("b", "redeem", WALLET, MERCHANT, 20)]
    rows = [transfer_row(r, {}, "a", NOW) for r in reqs]
    entries, after = trial(reqs, rows, {}, accounts, {}, NOW)
    assert len(entries) == 4 and [e["transfer_key"] for e in entries] == ["a", "a", "b", "b"]
    assert after[WALLET].debits_posted == 40 and accounts[WALLET].debits_posted == 0
    assert entries[2]["prev_hash"] == entries[0]["hash"]  # b's debit follows a's on the wallet's chain
    over = reqs + [transfer("c", "redeem", WALLET, MERCHANT, 20)]
    assert trial(over, [transfer_row(r, {}, "a", NOW) for r in over], {}, accounts, {}, NOW) is None
    assert accounts[WALLET].debits_posted == 0 and not accounts[WALLET].touched


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([FUND, WALLET, MERCHANT]), st.sampled_from([FUND, WALLET, MERCHANT]),
                          st.integers(1, 80)), max_size=25))
def test_applied_transfers_keep_debits_equal_to_credits_and_wallets_above_zero(moves):
    accounts = books(100)
    for i, (debit, credit, amount) in enumerate(moves):
        if debit == credit:
            continue
        attempt = {k: copy_state(v) for k, v in accounts.items()}  # a refusal may leave its states half moved
        try:
            entries = run(transfer(f"t{i}", "adjust", debit, credit, amount), attempt)
        except DomainError as exc:
            assert exc.code == "insufficient_funds" and debit != FUND  # the fund may go below zero here
            continue
        assert {(e["pending_delta"], e["posted_delta"]) for e in entries} == {(0, amount)}
        assert accounts[debit].debits_posted + amount == attempt[debit].debits_posted
        accounts = attempt
    assert sum(a.debits_posted for a in accounts.values()) + 100 == sum(a.credits_posted for a in accounts.values())
    for a in accounts.values():
        assert not a.no_negative or a.debits_posted + a.debits_pending <= a.credits_posted


@given(st.tuples(st.text(), st.text(), st.text(), st.one_of(st.none(), st.text())))
@settings(max_examples=500)
def test_the_hashed_text_of_a_transfers_free_fields_is_what_json_dumps_writes(fields) -> None:
    """``chain._about`` joins strings that need no escaping itself (the batch's hashing hot path): byte for
    byte what ``json.dumps`` writes, or it hands the fields to ``json.dumps``; old chains keep verifying."""
    import json

    from ledger.journal import chain

    expected = json.dumps(list(fields), ensure_ascii=False, separators=(",", ":"))
    made = chain._plain_json(fields)
    assert made is None or made == expected
    assert chain._about(*fields) == expected
    assert chain._plain_json((fields[0], 7, fields[2], None)) is None  # not text: json.dumps writes it
