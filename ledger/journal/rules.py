"""The journal's rules, pure: no database, no SQL, no clock but the ``now`` handed in.

What a request must look like (``check_shape``), what a resolution or a reversal takes from the transfer
it names (``resolve_accounts``), which account statuses refuse which transfers (``check_status``), what a
transfer's phase does to its two entries (``phase_deltas``, ``resolution_problem``, ``reversal_problem``:
the ONE rule set that posting, the online verifier ``ledger.journal.verify`` and the offline export
verifier ``ledger.journal.export`` all use), applying a transfer to the locked account states (``apply``),
the two entries it makes with their hash chains (``entries_for``) and the trial of a whole batch on
copies of the states (``trial``). ``ledger.journal.posting`` reads and locks; ``ledger.journal.dialects``
writes; everything in between is here and can be tested with plain objects.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from ledger import errors
from ledger.errors import DomainError
from ledger.infra.db import utc_from_db
from ledger.invariants import InvariantViolation, invariant
from ledger.journal.chain import entry_hash
from ledger.journal.models import TRANSFER_KINDS, TRANSFER_PHASES

MAX_AMOUNT = 10**12  # one transfer; far above any real award, far below BIGINT
MAX_TOTAL = 2**63 - 1
MAX_BATCH = 8_000
MAX_KEY_LENGTH = 100
MAX_HOLD_TIMEOUT_S = 31 * 24 * 3600
MAX_REASON_LENGTH = 2_000

RESOLUTION_PHASES = ("post", "void", "expire")
# where donated beans can be: the fund reconciles when their balances add up to the donations
RECONCILIATION_KINDS = ("fund", "budget", "wallet", "merchant", "payout", "expiry", "adjustment")
# the fields a retry must repeat exactly to be answered from the stored transfer
SAME_FIELDS = ("kind", "phase", "debit_account_id", "credit_account_id", "amount", "pending_id",
               "reverses_id", "actor", "reason", "reference")


@dataclass(frozen=True)
class TransferRequest:
    """What a caller asks for. Build it with ``transfer``, ``hold``, ``post_hold``, ``void_hold``,
    ``reversal`` (in ``ledger.journal.posting``) rather than by hand."""

    transfer_key: str
    kind: str
    phase: str = "single"
    debit_account_id: int | None = None
    credit_account_id: int | None = None
    amount: int | None = None
    pending_key: str | None = None
    timeout_s: int | None = None
    reverses_key: str | None = None
    actor: str = "system"
    reason: str = ""
    reference: str | None = None


@dataclass
class AccountState:
    """A locked account's row as posting sees it (the columns of ``dialects.ACCOUNT_COLUMNS``, in order)."""

    id: int
    kind: str
    status: str
    no_negative: bool
    debits_pending: int
    debits_posted: int
    credits_pending: int
    credits_posted: int
    entry_count: int
    chain_head: str
    touched: bool = False


def copy_state(acc: AccountState) -> AccountState:
    copy = AccountState.__new__(AccountState)
    copy.__dict__ = acc.__dict__.copy()
    return copy


# --- what a transfer's phase does to its entries: the one rule set ------------------------------------

def phase_deltas(phase: str, amount: int, held_amount: int | None = None) -> tuple[int, int]:
    """``(pending_delta, posted_delta)`` of both entries of a transfer (the same on the debit and the
    credit side): a single transfer posts its amount, a hold reserves it, and a resolution releases the
    whole hold (``held_amount``) and, for a post, posts its own amount."""
    if phase == "single":
        return 0, amount
    if phase == "pending":
        return amount, 0
    if phase not in RESOLUTION_PHASES or held_amount is None:
        raise InvariantViolation(f"no deltas for a {phase} transfer (of a hold of {held_amount})")
    return -held_amount, amount if phase == "post" else 0


def resolution_problem(phase: str, amount: int, debit_id: int, credit_id: int,
                       held: tuple[int, int, int] | None) -> str | None:
    """What is wrong with a post, void or expire of ``held`` (amount, debit, credit of an open hold;
    ``None`` if it names no open hold), or ``None``: a resolution moves beans between the hold's own
    accounts, never more than it reserved, and a void or expiry releases exactly the hold."""
    if held is None:
        return "resolves a transfer that is not an open hold"
    held_amount, held_debit, held_credit = held
    if (debit_id, credit_id) != (held_debit, held_credit):
        return f"resolves a hold between other accounts ({held_debit} -> {held_credit})"
    if amount > held_amount or (phase != "post" and amount != held_amount):
        return f"{phase}s {amount} of a hold of {held_amount}"
    return None


def is_reversible(phase: str, kind: str) -> bool:
    """Only posted transfers that are not reversals themselves can be reversed."""
    return phase in ("single", "post") and kind != "reverse"


def reversal_problem(phase: str, original_reversible: bool, original_amount: int,
                     reversed_total: int) -> str | None:
    """What is wrong with a reversal (of ``phase``) of an original (``is_reversible`` of it), given that
    all reversals of it so far add up to ``reversed_total`` (this one included), or ``None``."""
    if phase != "single":
        return f"a {phase} transfer cannot reverse another"
    if not original_reversible:
        return "reverses a transfer that cannot be reversed (only posted transfers that are not reversals can)"
    if reversed_total > original_amount:
        return f"reversals add up to {reversed_total}, more than the original's {original_amount}"
    return None


def entries_problem(phase: str, amount: int, debit_id: int, credit_id: int, held_amount: int | None,
                    entries: list[tuple[str, int, int, int]]) -> tuple[int | None, str] | None:
    """Check a transfer's entries ``(side, account_id, pending_delta, posted_delta)``: exactly one debit
    on its debit account and one credit on its credit account, each with the deltas its phase implies.
    Returns ``(index of the wrong entry or None for the transfer, message)`` or ``None``."""
    if len(entries) == 2 and phase in TRANSFER_PHASES:  # as posting writes them: the debit, then the credit
        (side_1, account_1, pending_1, posted_1), (side_2, account_2, pending_2, posted_2) = entries
        if (side_1, account_1, side_2, account_2) == ("D", debit_id, "C", credit_id) and (
                (pending_1, posted_1) == (pending_2, posted_2) == phase_deltas(phase, amount, held_amount)):
            return None
    sides = sorted((side, account) for side, account, _, _ in entries)
    if sides != [("C", credit_id), ("D", debit_id)]:
        return None, f"has entries {sides}; expected one debit on {debit_id} and one credit on {credit_id}"
    if phase not in TRANSFER_PHASES:
        return None, f"has no phase {phase!r}"
    expect = phase_deltas(phase, amount, held_amount)
    for i, (_, _, pending_delta, posted_delta) in enumerate(entries):
        if (pending_delta, posted_delta) != expect:
            return i, f"entry deltas {(pending_delta, posted_delta)} do not match a {phase} of {amount}"
    return None


def reconcile_balances(by_kind: dict[str, int]) -> tuple[int, dict[str, int], int, int]:
    """(donated, held by kind, accounted, difference) from posted balances by account kind: the beans
    donated (minus the donations account's balance) against where they are now; the difference is 0."""
    donated = -by_kind.get("donations", 0)
    held = {k: by_kind.get(k, 0) for k in RECONCILIATION_KINDS}
    accounted = sum(held.values())
    return donated, held, accounted, donated - accounted


# --- shape and status ------------------------------------------------------------------------------------

def check_shape(req: TransferRequest) -> None:
    if not isinstance(req.transfer_key, str) or not 1 <= len(req.transfer_key) <= MAX_KEY_LENGTH:
        raise DomainError(errors.VALIDATION_FAILED, f"transfer id must be 1 to {MAX_KEY_LENGTH} characters")
    if len(req.reason) > MAX_REASON_LENGTH or len(req.actor) > 80 or len(req.reference or "") > 120:
        raise DomainError(errors.VALIDATION_FAILED, "reason, actor or reference is too long")
    if req.amount is not None and (
        type(req.amount) is not int or not 1 <= req.amount <= MAX_AMOUNT  # bool is not an amount
    ):
        raise DomainError(errors.INVALID_AMOUNT, f"amount must be a whole number from 1 to {MAX_AMOUNT}")
    if req.phase in ("single", "pending"):
        if req.reverses_key is None:
            if req.kind not in TRANSFER_KINDS or req.kind == "reverse":
                raise DomainError(errors.UNKNOWN_TRANSFER_KIND, f"no transfer kind {req.kind!r}")
            if req.amount is None:
                raise DomainError(errors.INVALID_AMOUNT, "amount is required")
            if type(req.debit_account_id) is not int or type(req.credit_account_id) is not int:
                raise DomainError(errors.VALIDATION_FAILED, "debit and credit accounts are required")
            if req.debit_account_id == req.credit_account_id:
                raise DomainError(errors.SAME_ACCOUNT)
        elif req.amount is None or req.phase != "single":
            raise DomainError(errors.INVALID_AMOUNT, "a reversal names its amount")
    if req.phase == "pending":
        if type(req.timeout_s) is not int or not 1 <= req.timeout_s <= MAX_HOLD_TIMEOUT_S:
            raise DomainError(errors.INVALID_TIMEOUT)
    elif req.phase == "single":
        pass
    elif req.phase in RESOLUTION_PHASES:
        if not req.pending_key:
            raise DomainError(errors.VALIDATION_FAILED, "a hold resolution names its hold")
        if req.phase != "post" and req.amount is not None:
            raise DomainError(errors.VALIDATION_FAILED, "void and expire release the whole hold")
    else:
        raise DomainError(errors.VALIDATION_FAILED, f"no transfer phase {req.phase!r}")


def check_batch(requests: Sequence[TransferRequest]) -> None:
    """The batch as a whole and every request's shape, before anything is read."""
    if not requests:
        raise DomainError(errors.BATCH_EMPTY)
    if len(requests) > MAX_BATCH:
        raise DomainError(errors.BATCH_TOO_LARGE, f"at most {MAX_BATCH} transfers in one batch")
    linked = len(requests) > 1
    for i, req in enumerate(requests):
        try:
            check_shape(req)
        except DomainError as exc:
            raise fail(linked, i, str(req.transfer_key), exc) from None
    if len({r.transfer_key for r in requests}) != len(requests):
        raise DomainError(errors.DUPLICATE_ID_IN_BATCH)


def fail(batch: bool, index: int, key: str, exc: DomainError) -> DomainError:
    """A refusal as the caller sees it: in a linked batch, which transfer failed and why."""
    if not batch:
        return exc
    return DomainError(
        errors.LINKED_TRANSFER_FAILED,
        f"transfer {index} ({key}) failed: {exc.code}: {exc.message}",
        index=index, transfer_key=key, cause=exc.code,
    )


def resolve_accounts(req: TransferRequest, named: dict[str, Any]) -> TransferRequest:
    """Fill in what a resolution or a reversal takes from the transfer it names (``named``: key -> row)."""
    if req.pending_key:
        held = named.get(req.pending_key)
        if held is None:
            raise DomainError(errors.PENDING_NOT_FOUND, pending_key=req.pending_key)
        if held.phase != "pending":
            raise DomainError(errors.NOT_A_PENDING_TRANSFER, pending_key=req.pending_key)
        amount = req.amount if req.phase == "post" and req.amount is not None else held.amount
        return replace(req, kind=held.kind, debit_account_id=held.debit_account_id,
                       credit_account_id=held.credit_account_id, amount=amount)
    if req.reverses_key:
        original = named.get(req.reverses_key)
        if original is None:
            raise DomainError(errors.TRANSFER_NOT_FOUND, transfer_key=req.reverses_key)
        if not is_reversible(original.phase, original.kind):
            raise DomainError(errors.NOT_REVERSIBLE, "only posted transfers that are not reversals can be reversed")
        return replace(req, debit_account_id=original.credit_account_id,
                       credit_account_id=original.debit_account_id)
    return req


def check_status(acc: AccountState, req: TransferRequest) -> None:
    if req.phase in ("void", "expire"):
        return  # releasing a hold must always work
    if acc.status == "closed":
        raise DomainError(errors.ACCOUNT_CLOSED, account_id=acc.id)
    if acc.status == "frozen" and req.kind not in ("reverse", "adjust"):
        spec = errors.WALLET_FROZEN if acc.kind == "wallet" else errors.ACCOUNT_FROZEN
        raise DomainError(spec, account_id=acc.id)


def transfer_row(req: TransferRequest, named: dict[str, Any], batch_key: str | None,
                 now: dt.datetime) -> dict[str, Any]:
    """The ``transfers`` row a resolved request writes (``batch_key`` only for a linked batch)."""
    return {
        "transfer_key": req.transfer_key, "kind": req.kind, "phase": req.phase,
        "debit_account_id": req.debit_account_id, "credit_account_id": req.credit_account_id,
        "amount": req.amount,
        "pending_id": named[req.pending_key].id if req.pending_key else None,
        "expires_at": now + dt.timedelta(seconds=req.timeout_s) if req.phase == "pending" else None,
        "reverses_id": named[req.reverses_key].id if req.reverses_key else None,
        "batch_key": batch_key,
        "actor": req.actor, "reason": req.reason, "reference": req.reference,
    }


# --- applying a transfer to the locked accounts ---------------------------------------------------------

def _check_hold(req: TransferRequest, row: dict[str, Any], held: Any, now: dt.datetime) -> None:
    expired = utc_from_db(held.expires_at) <= now
    if req.phase in ("post", "void") and expired:
        raise DomainError(errors.PENDING_EXPIRED, pending_key=req.pending_key)
    if req.phase == "expire" and not expired:
        raise DomainError(errors.VALIDATION_FAILED, "the hold has not expired yet")
    if row["amount"] > held.amount:
        raise DomainError(errors.EXCEEDS_PENDING_AMOUNT, held=held.amount)
    invariant(resolution_problem(req.phase, row["amount"], row["debit_account_id"], row["credit_account_id"],
                                 (held.amount, held.debit_account_id, held.credit_account_id)) is None,
              "a resolution releases its own hold")


def apply(req: TransferRequest, row: dict[str, Any], named: dict[str, Any], accounts: dict[int, AccountState],
          reversed_so_far: dict[int, int], now: dt.datetime) -> tuple[int, int]:
    """Every rule for one transfer against the account states, which it then moves on by the transfer's
    ``phase_deltas`` (returned, for ``entries_for``); raises ``DomainError`` on a refusal (the states may
    then be half moved: work on copies, or give up)."""
    debit = accounts.get(row["debit_account_id"])
    credit = accounts.get(row["credit_account_id"])
    if debit is None or credit is None:
        missing = row["debit_account_id"] if debit is None else row["credit_account_id"]
        raise DomainError(errors.ACCOUNT_NOT_FOUND, account_id=missing)
    check_status(debit, req)
    check_status(credit, req)
    amount = row["amount"]
    held_amount = None
    if req.pending_key:
        held = named[req.pending_key]
        _check_hold(req, row, held, now)
        held_amount = held.amount
    elif req.reverses_key:
        original = named[req.reverses_key]
        done = reversed_so_far.get(original.id, 0)
        if done + amount > original.amount:
            raise DomainError(errors.EXCEEDS_REVERSIBLE_AMOUNT, remaining=original.amount - done)
        reversed_so_far[original.id] = done + amount
    deltas = pending_delta, posted_delta = phase_deltas(req.phase, amount, held_amount)
    if pending_delta:
        debit.debits_pending += pending_delta
        credit.credits_pending += pending_delta
    if posted_delta:
        debit.debits_posted += posted_delta
        credit.credits_posted += posted_delta

    for acc in (debit, credit):
        if max(acc.debits_posted + acc.debits_pending, acc.credits_posted + acc.credits_pending) > MAX_TOTAL:
            raise DomainError(errors.INVALID_AMOUNT, "the account's totals would overflow", account_id=acc.id)
        invariant(min(acc.debits_pending, acc.credits_pending, acc.debits_posted, acc.credits_posted) >= 0,
                  "running totals never go below zero")
    if debit.no_negative and debit.debits_posted + debit.debits_pending > debit.credits_posted:
        raise DomainError(errors.INSUFFICIENT_FUNDS, account_id=debit.id,
                          available=debit.credits_posted - debit.debits_posted - debit.debits_pending + (
                              amount if req.phase in ("single", "pending") else 0))
    invariant(not credit.no_negative or credit.debits_posted + credit.debits_pending <= credit.credits_posted,
              "a credit never makes a balance negative")
    return deltas


def entries_for(transfer_id: int, req: TransferRequest, row: dict[str, Any], deltas: tuple[int, int],
                accounts: dict[int, AccountState]) -> list[dict[str, Any]]:
    """The transfer's two entries, with the ``deltas`` ``apply`` returned: each extends its account's chain."""
    amount = row["amount"]
    pending_delta, posted_delta = deltas
    out = []
    for side, acc_id, other_id in (("D", row["debit_account_id"], row["credit_account_id"]),
                                   ("C", row["credit_account_id"], row["debit_account_id"])):
        acc = accounts[acc_id]
        acc.entry_count += 1
        balance_after = acc.credits_posted - acc.debits_posted
        new_hash = entry_hash(
            acc.chain_head, account_id=acc_id, seq=acc.entry_count, transfer_key=req.transfer_key,
            kind=req.kind, phase=req.phase, side=side, counterparty_id=other_id, amount=amount,
            pending_delta=pending_delta, posted_delta=posted_delta, balance_after=balance_after,
            actor=req.actor, reason=req.reason, reference=req.reference,
        )
        out.append({
            "account_id": acc_id, "seq": acc.entry_count, "transfer_id": transfer_id, "side": side,
            "pending_delta": pending_delta, "posted_delta": posted_delta, "balance_after": balance_after,
            "prev_hash": acc.chain_head, "hash": new_hash,
        })
        acc.chain_head = new_hash
        acc.touched = True
    return out


def trial(resolved: list[TransferRequest], rows: list[dict[str, Any]], named: dict[str, Any],
          accounts: dict[int, AccountState], reversed_so_far: dict[int, int],
          now: dt.datetime) -> tuple[list[dict[str, Any]], dict[int, AccountState]] | None:
    """Every rule and both entries of every transfer, as if all were new, on copies of the locked state.

    ``None`` when any rule refuses (or anything else goes wrong): the careful path then decides, in
    its order (retries first, then the rules), from the untouched state."""
    trial_accounts = {k: copy_state(v) for k, v in accounts.items()}
    trial_reversed = dict(reversed_so_far)
    entries: list[dict[str, Any]] = []
    try:
        for req, row in zip(resolved, rows):
            deltas = apply(req, row, named, trial_accounts, trial_reversed, now)
            for e in entries_for(0, req, row, deltas, trial_accounts):
                e["transfer_key"] = req.transfer_key
                entries.append(e)
    except (DomainError, InvariantViolation):
        return None
    return entries, trial_accounts
