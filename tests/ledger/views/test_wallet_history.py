"""The phone's history (``ledger.views.wallet``) on SQLite and PostgreSQL: every line names what it was about,
and its running figure is what the volunteer can spend, so the newest line always equals the big number, through
payments, a refund, a hold confirmed, a hold declined and one still waiting."""

from __future__ import annotations

import pytest

from ledger import redemption
from ledger.journal.accounts import get_account
from ledger.redemption import codes
from ledger.views import wallet as wallet_view
from tests.ledger.redemption.test_redemption import as_user, redeem, till
from tests.redemption_world import build_world


@pytest.fixture
def world(books):
    return build_world(books)


def test_the_running_figure_is_what_can_be_spent_and_every_line_names_its_shop(books, world, clock) -> None:
    books.settings = books.settings.with_overrides({"redemption_hold_threshold": 100})
    volunteer = as_user(books, world.volunteer)

    def pay(amount: int) -> dict:
        return redeem(books, world, codes.issue_wallet_code(books, world.wallet).code, amount).json()

    paid = pay(30)
    redemption.refund(books, till(world), paid["redemption_id"], idempotency_key="r1", amount=10)
    confirmed = pay(150)
    redemption.confirm_hold(books, volunteer, confirmed["redemption_id"])
    declined = pay(120)
    redemption.decline_hold(books, volunteer, declined["redemption_id"])
    waiting = pay(200)
    assert waiting["status"] == "awaiting_confirmation"

    out = wallet_view.history(books, volunteer, limit=50)
    account = get_account(books, world.wallet)
    assert out["available"] == account.available == 1000 - 30 + 10 - 150 - 200
    lines = out["lines"]
    assert lines[0]["available_after"] == out["available"]  # one balance everywhere
    for newer, older in zip(lines, lines[1:]):
        assert newer["available_after"] - newer["change"] == older["available_after"]
    assert lines[-1]["available_after"] - lines[-1]["change"] == 0  # the wallet started empty
    shop = "shop-a 小卖部"
    by_what = [(line["what"], line.get("shop"), line["change"]) for line in lines]
    assert by_what[:7] == [
        ("payment_waiting", shop, -200), ("payment_released", shop, 120), ("payment_waiting", shop, -120),
        ("payment_confirmed", shop, 0), ("payment_waiting", shop, -150), ("refund", shop, 10), ("payment", shop, -30)]
    assert all(line["change"] or line["what"] == "payment_confirmed" for line in lines)

    recent = wallet_view.recent_payments(books, volunteer)
    assert [(p["shop"], p["amount"], p["status"]) for p in recent[:2]] == [
        (shop, 200, "awaiting_confirmation"), (shop, 120, "declined")]
    # only one's own wallet: the other volunteer's history holds none of this
    other = wallet_view.history(books, as_user(books, world.other_volunteer))
    assert not any(line.get("shop") for line in other["lines"]) and other["available"] == 1000
