"""What a till sees before confirming: the masked name and available beans behind a code, checked as a
redemption would check it, for the till's own merchant only, spending nothing; and the refund page's preview."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from ledger import redemption
from ledger.access.masking import mask_name, mask_phone
from ledger.errors import DomainError
from ledger.journal.accounts import set_account_status
from ledger.redemption import TillContext, codes
from ledger.schema import Merchant, SpentCode, User
from tests.ledger.redemption.test_redemption import as_user, balances, redeem, till
from tests.redemption_world import build_world


@pytest.fixture
def world(books):
    world = build_world(books)
    with books.session() as s:
        s.get(User, world.volunteer).display_name = "张志华"
        s.commit()
    return world


def refused_preview(books, ctx, code, error: str) -> None:
    with pytest.raises(DomainError) as info:
        redemption.preview_code(books, ctx, code)
    assert info.value.code == error, info.value


@pytest.mark.parametrize(("name", "masked"), [("张志华", "张*华"), ("欧阳志华", "欧**华"), ("张华", "张*"), ("张", "张"),
                                              ("", ""), (None, ""), ("Zhao Wei", "Z*** **i")])
def test_mask_name(name, masked):
    assert mask_name(name) == masked


def test_mask_phone():
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+8613812345678") == "+86*******5678"
    assert mask_phone("12345") == "***45" and mask_phone(None) == ""


def test_preview_shows_the_masked_name_and_available_beans_and_spends_nothing(books, world):
    code = codes.issue_wallet_code(books, world.wallet).code
    before = balances(books, world)
    seen = redemption.preview_code(books, till(world), code)
    assert seen == {"kind": "wallet", "customer": "张*华", "available": 1000, "pin_required": False}
    assert redemption.preview_code(books, till(world), code) == seen  # as often as the cashier asks
    assert balances(books, world) == before
    with books.session(readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(SpentCode)) == 0
    assert redeem(books, world, code, 30).json()["status"] == "completed"  # the code still pays, once
    refused_preview(books, till(world), code, "code_already_used")
    fresh = codes.issue_wallet_code(books, world.wallet).code
    assert redemption.preview_code(books, till(world), fresh)["available"] == 970


def test_preview_is_for_a_till_of_the_merchant_and_refuses_as_a_redemption_would(books, world, clock):
    code = codes.issue_wallet_code(books, world.wallet).code
    # a cashier of shop A asking for shop B, and a volunteer, are refused before the code is read
    refused_preview(books, TillContext(world.merchant_b, till(world).principal), code, "permission_denied")
    refused_preview(books, TillContext(world.merchant_a, as_user(books, world.volunteer)), code, "permission_denied")
    refused_preview(books, till(world), "garbage", "invalid_code")
    refused_preview(books, till(world), code[:-4] + "AAAA", "invalid_code")
    set_account_status(books, world.wallet, "frozen")
    refused_preview(books, till(world), code, "wallet_frozen")
    set_account_status(books, world.wallet, "open")
    with books.session() as s:
        s.get(Merchant, world.merchant_a).status = "suspended"
        s.commit()
    refused_preview(books, till(world), code, "merchant_suspended")
    assert redemption.preview_code(books, till(world, "b"), code)["customer"] == "张*华"
    clock.advance(120)
    refused_preview(books, till(world, "b"), code, "code_expired")


def test_a_card_shows_the_name_and_needs_the_pin_but_not_the_balance(books, world):
    issued = redemption.issue_card(books, world.volunteer, f"user:{world.officer}", pin="2468")
    seen = redemption.preview_code(books, till(world), issued["code"])
    assert seen == {"kind": "card", "customer": "张*华", "available": None, "pin_required": True}
    redemption.revoke_card(books, issued["card"]["id"], by=as_user(books, world.officer))
    refused_preview(books, till(world), issued["code"], "card_revoked")


def test_sale_at_till_names_the_customer_and_what_remains(books, world):
    sale = redeem(books, world, codes.issue_wallet_code(books, world.wallet).code, 30).json()
    seen = redemption.sale_at_till(books, till(world), sale["redemption_id"])
    assert (seen["customer"], seen["amount"], seen["remaining"], seen["refusal"]) == ("张*华", 30, 30, None)
    redemption.refund(books, till(world), sale["redemption_id"], idempotency_key="r1", amount=30)
    seen = redemption.sale_at_till(books, till(world), sale["redemption_id"])
    assert (seen["remaining"], seen["refusal"]) == (0, "exceeds_refundable")
    with pytest.raises(DomainError) as info:  # another shop's till learns nothing, not even that it exists
        redemption.sale_at_till(books, till(world, "b"), sale["redemption_id"])
    assert info.value.code == "not_found"


def test_a_settlement_preview_says_what_the_run_would_pay_and_changes_nothing(books, world, clock):
    from ledger.redemption import settlement

    fund = as_user(books, world.fund_manager)
    redeem(books, world, codes.issue_wallet_code(books, world.wallet).code, 30)
    sale = redeem(books, world, codes.issue_wallet_code(books, world.wallet).code, 20).json()
    redemption.refund(books, till(world), sale["redemption_id"], idempotency_key="r", amount=5)
    with pytest.raises(DomainError) as info:
        settlement.preview_settlement(books, "2026-11", by=fund)
    assert info.value.code == "period_not_ended"
    with pytest.raises(DomainError) as info:
        settlement.preview_settlement(books, "2026-11", by=as_user(books, world.officer))
    assert info.value.code == "permission_denied"
    clock.advance(40 * 86400)
    before = balances(books, world)
    due = settlement.preview_settlement(books, "2026-11", by=fund)
    assert (due["merchants"], due["amount"], due["settled"]) == (1, 45, 0)
    assert balances(books, world) == before
    rows = settlement.run_settlement(books, "2026-11", "user:fm", by=fund)
    assert sum(r["amount"] for r in rows) == due["amount"]
    again = settlement.preview_settlement(books, "2026-11", by=fund)
    assert (again["merchants"], again["amount"], again["settled"]) == (0, 0, 2)


def test_the_number_a_cashier_types_previews_as_its_code_does(books, world):
    """Every kind of code a till may take, it may look up first: the 16-digit number under a pay code reads
    as the code itself (one reader for the sale and the preview)."""
    issued = redemption.issue_payment_code(books, as_user(books, world.volunteer))
    assert issued.number and len(issued.number.replace(" ", "")) == 16
    seen = redemption.preview_code(books, till(world), issued.number)
    assert seen == redemption.preview_code(books, till(world), issued.code)
    assert seen["customer"] == "张*华" and seen["available"] == 1000
