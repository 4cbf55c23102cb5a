"""Every redemption use case checks its principal against the merchant (or card, or wallet) itself: called
directly, without any front door, with a principal of another merchant it refuses and changes nothing."""

from __future__ import annotations

import pytest

from ledger import redemption
from ledger.access.identity import load_actor
from ledger.access.policy import SYSTEM, TillDevice
from ledger.errors import DomainError
from ledger.journal.accounts import get_account
from ledger.redemption import TillContext, codes
from ledger.redemption.settlement import list_settlements, run_settlement
from ledger.views import directory
from tests.redemption_world import build_world


@pytest.fixture
def world(books):
    return build_world(books)


def as_user(books, user_id: int):
    with books.session(readonly=True) as s:
        return load_actor(s, user_id)


def balances(books, world) -> tuple:
    return tuple(get_account(books, a).balance for a in (world.wallet, world.merchant_a_account,
                                                         world.merchant_b_account))


def refused(books, world, code: str, fn) -> None:
    before = balances(books, world)
    with pytest.raises(DomainError) as info:
        fn()
    assert info.value.code == code, info.value
    assert balances(books, world) == before


def _sale(books, world, amount: int = 30) -> int:
    ctx = TillContext(world.merchant_a, as_user(books, world.cashier_a))
    code = codes.issue_wallet_code(books, world.wallet).code
    return redemption.redeem(books, ctx, code=code, amount=amount, idempotency_key=f"sale-{amount}").json()[
        "redemption_id"]


def test_redeem_with_another_merchants_cashier_or_till_is_refused_inside_the_use_case(books, world):
    cashier_b = as_user(books, world.cashier_b)
    till_b = TillDevice(till_id=1, merchant_id=world.merchant_b)
    for principal, why in ((cashier_b, "You do not serve at this merchant."),
                           (till_b, "This till belongs to another merchant.")):
        code = codes.issue_wallet_code(books, world.wallet).code
        ctx = TillContext(world.merchant_a, principal)
        with pytest.raises(DomainError) as info:
            redemption.redeem(books, ctx, code=code, amount=10, idempotency_key="k")
        assert (info.value.code, info.value.message) == ("permission_denied", why)
        refused(books, world, "permission_denied",
                lambda: redemption.redeem_at_till(books, ctx, "10.0.0.9", code=code, amount=10, pin="1234",
                                                  idempotency_key="k"))
    # a volunteer, an officer or an admin serves at no till
    for uid in (world.volunteer, world.officer, world.admin):
        code = codes.issue_wallet_code(books, world.wallet).code
        refused(books, world, "permission_denied", lambda: redemption.redeem(
            books, TillContext(world.merchant_a, as_user(books, uid)), code=code, amount=10, idempotency_key="k"))
    # the merchant's own cashier, not naming it (they serve at one), may
    code = codes.issue_wallet_code(books, world.wallet).code
    own = redemption.redeem(books, TillContext(None, as_user(books, world.cashier_a)), code=code, amount=10,
                            idempotency_key="own")
    assert own.json()["merchant"]["id"] == world.merchant_a


def test_refunds_and_reads_of_another_merchants_redemption_are_refused(books, world):
    rid = _sale(books, world)
    cashier_b, owner_b = as_user(books, world.cashier_b), as_user(books, world.owner_b)
    # naming the other merchant: not theirs to act for; naming none or their own: they cannot see it
    refused(books, world, "permission_denied", lambda: redemption.refund(
        books, TillContext(world.merchant_a, cashier_b), rid, idempotency_key="r"))
    for ctx in (TillContext(None, cashier_b), TillContext(world.merchant_b, owner_b),
                TillContext(None, TillDevice(7, world.merchant_b))):
        refused(books, world, "not_found", lambda: redemption.refund(books, ctx, rid, idempotency_key="r"))
    refused(books, world, "not_found", lambda: redemption.get_redemption(books, cashier_b, rid))
    refused(books, world, "permission_denied",
            lambda: redemption.list_redemptions(books, world.merchant_a, by=cashier_b))
    refused(books, world, "permission_denied",
            lambda: directory.takings_today(books, world.merchant_a, by=cashier_b))
    # their own cashier (naming no merchant), auditors and fund managers read it
    fund_manager = as_user(books, world.fund_manager)
    assert redemption.get_redemption(books, fund_manager, rid)["redemption_id"] == rid
    assert [r["redemption_id"] for r in redemption.list_redemptions(books, world.merchant_a, by=fund_manager)] == [rid]
    assert directory.takings_today(books, world.merchant_a, by=as_user(books, world.cashier_a))["redeemed"] == 30
    done = redemption.refund(books, TillContext(None, as_user(books, world.cashier_a)), rid, idempotency_key="r")
    assert done.json()["amount"] == 30


def test_tills_catalogue_and_settlements_are_the_owners(books, world):
    owner_a, owner_b = as_user(books, world.owner_a), as_user(books, world.owner_b)
    cashier_a = as_user(books, world.cashier_a)
    for who in (owner_b, cashier_a):
        refused(books, world, "permission_denied",
                lambda: redemption.issue_till(books, world.merchant_a, "till", who.ref, by=who))
        refused(books, world, "permission_denied", lambda: redemption.list_tills(books, world.merchant_a, by=who))
        refused(books, world, "permission_denied",
                lambda: redemption.add_item(books, world.merchant_a, "tea", 5, by=who))
        refused(books, world, "permission_denied", lambda: list_settlements(books, merchant_id=world.merchant_a,
                                                                            by=who))
        refused(books, world, "permission_denied", lambda: run_settlement(books, "2026-10", who.ref, by=who))
    item = redemption.add_item(books, world.merchant_a, "tea", 5, by=owner_a)
    refused(books, world, "permission_denied",
            lambda: redemption.update_item(books, world.merchant_a, item["id"], active=False, by=owner_b))
    # naming their own merchant does not reach another merchant's item
    refused(books, world, "not_found",
            lambda: redemption.update_item(books, world.merchant_b, item["id"], active=False, by=owner_b))
    redemption.update_item(books, world.merchant_a, item["id"], active=False, by=owner_a)
    # withdrawn items: only the owner sees them
    assert redemption.list_items(books, world.merchant_a, by=owner_b) == []
    assert [i["id"] for i in redemption.list_items(books, world.merchant_a, by=owner_a)] == [item["id"]]
    assert redemption.list_tills(books, world.merchant_a, by=as_user(books, world.admin)) == []
    assert list_settlements(books, merchant_id=world.merchant_a, by=owner_a) == []
    fund_manager = as_user(books, world.fund_manager)
    assert [st["amount"] for st in run_settlement(books, "2026-10", fund_manager.ref, by=fund_manager)] == [0, 0]


def test_a_cashier_with_several_merchants_names_one(books, world):
    with books.session() as s:
        from ledger.access.identity import grant_role_in

        grant_role_in(s, world.cashier_a, "cashier", merchant_id=world.merchant_b)
    both = as_user(books, world.cashier_a)
    code = codes.issue_wallet_code(books, world.wallet).code
    refused(books, world, "validation_failed", lambda: redemption.redeem(
        books, TillContext(None, both), code=code, amount=10, idempotency_key="k"))
    answer = redemption.redeem(books, TillContext(world.merchant_b, both), code=code, amount=10, idempotency_key="k")
    assert answer.json()["merchant"]["id"] == world.merchant_b


def test_cards_are_managed_by_admins_and_officers_in_scope_only(books, world):
    card = redemption.issue_card(books, world.volunteer, "test", "2468", by=SYSTEM)["card"]["id"]
    for uid in (world.cashier_a, world.owner_a, world.fund_manager):
        refused(books, world, "permission_denied",
                lambda: redemption.revoke_card(books, card, by=as_user(books, uid)))
    assert redemption.get_card(books, card, by=as_user(books, world.officer))["status"] == "active"
    assert redemption.unlock_card(books, card, by=as_user(books, world.admin))["status"] == "active"


def test_a_signed_wallet_code_for_no_account_is_invalid_code_not_a_crash(books, world):
    """Issue 14: the spent code refers to the wallet, so a code for an account that does not exist failed
    on the foreign key (a 500) instead of being refused."""
    ctx = TillContext(world.merchant_a, as_user(books, world.cashier_a))
    for account in (987_654, world.merchant_b_account):  # none at all; an account that is no wallet
        code = codes.issue_wallet_code(books, account).code
        refused(books, world, "invalid_code",
                lambda: redemption.redeem(books, ctx, code=code, amount=10, idempotency_key=f"ghost-{account}"))
    # and the till still works
    code = codes.issue_wallet_code(books, world.wallet).code
    assert redemption.redeem(books, ctx, code=code, amount=10, idempotency_key="real").json()["status"] == "completed"
