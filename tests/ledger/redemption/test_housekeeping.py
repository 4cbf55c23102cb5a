"""Pruning spent codes and idempotency keys: only past their retention, never a code that could still be
presented, never the journal."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from ledger import redemption
from ledger.access.identity import Actor, Grant
from ledger.errors import DomainError
from ledger.journal.verify import verify_books
from ledger.redemption import TillContext, codes
from ledger.redemption.housekeeping import MIN_SPENT_CODE_RETENTION_S, prune
from ledger.schema import Entry, IdempotencyRecord, SpentCode, Transfer
from tests.redemption_world import build_world


@pytest.fixture
def world(books):
    return build_world(books)


def _till(world) -> TillContext:
    return TillContext(world.merchant_a, Actor(world.cashier_a, "cashier_a", "cashier_a",
                                               (Grant("cashier", None, world.merchant_a),)))


def _count(books, model) -> int:
    with books.session(readonly=True) as s:
        return int(s.scalar(select(func.count()).select_from(model)))


def _redeem(books, world, key: str, amount: int = 1):
    code = codes.issue_wallet_code(books, world.wallet).code
    return code, redemption.redeem(books, _till(world), code=code, amount=amount, idempotency_key=key)


def test_prune_forgets_only_what_is_past_its_retention(books, world, clock) -> None:
    old_code, old_answer = _redeem(books, world, "old")
    clock.advance(3600)
    _redeem(books, world, "recent")
    journal = (_count(books, Transfer), _count(books, Entry))

    clock.advance(86_400 - 3600 + 1)  # the first redemption is a day and a second old, the other 23 hours
    report = prune(books)
    assert (report.spent_codes, report.idempotency_records) == (1, 0)
    assert _count(books, SpentCode) == 1

    # the forgotten code cannot be spent again: it expired long ago
    with pytest.raises(DomainError) as info:
        redemption.redeem(books, _till(world), code=old_code, amount=1, idempotency_key="again")
    assert info.value.code == "code_expired"
    # its key is still remembered: a retry gets the stored answer, byte for byte
    replay = redemption.redeem(books, _till(world), code=old_code, amount=1, idempotency_key="old")
    assert replay.replayed and replay.body == old_answer.body

    clock.advance(30 * 86_400)
    report = prune(books)
    assert (report.spent_codes, report.idempotency_records) == (1, 2)
    assert (_count(books, SpentCode), _count(books, IdempotencyRecord)) == (0, 0)
    assert (_count(books, Transfer), _count(books, Entry)) == journal  # the journal is never pruned
    assert verify_books(books).ok


def test_prune_walks_many_batches_and_stops_at_the_first_young_row(books, world, clock) -> None:
    for i in range(7):
        _redeem(books, world, f"k{i}")
    clock.advance(2 * 86_400)
    for i in range(3):
        _redeem(books, world, f"young{i}")
    report = prune(books, batch=2)
    assert report.spent_codes == 7 and _count(books, SpentCode) == 3
    assert prune(books, batch=2).spent_codes == 0  # nothing more, nothing twice


def test_a_retention_shorter_than_a_code_can_live_is_refused(books, world, clock) -> None:
    _redeem(books, world, "k")
    books.settings = books.settings.with_overrides({"spent_code_retention_s": MIN_SPENT_CODE_RETENTION_S - 1})
    clock.advance(86_400)
    with pytest.raises(DomainError) as info:
        prune(books)
    assert info.value.code == "validation_failed"
    assert _count(books, SpentCode) == 1


def test_the_shortest_allowed_retention_still_refuses_the_spent_code(books, world, clock) -> None:
    """A code spent at once and presented again at the last moment it is valid: still refused, either as
    used (its row kept) or as expired (its row pruned)."""
    books.settings = books.settings.with_overrides({"spent_code_retention_s": MIN_SPENT_CODE_RETENTION_S})
    code = codes.issue_wallet_code(books, world.wallet).code
    redemption.redeem(books, _till(world), code=code, amount=1, idempotency_key="first")
    for second in range(5, MIN_SPENT_CODE_RETENTION_S + 10, 5):
        clock.advance(5)
        prune(books)
        with pytest.raises(DomainError) as info:
            redemption.redeem(books, _till(world), code=code, amount=1, idempotency_key=f"retry{second}")
        assert info.value.code in ("code_already_used", "code_expired")
