"""A small district for the redemption tests: a funded volunteer, two merchants with owners and
cashiers, an officer, a fund manager. Built through the ledger's own helpers, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from ledger.access.identity import create_org_unit_in, create_user_in, grant_role_in, wallet_account_id
from ledger.infra.books import Books
from ledger.journal.accounts import open_account_in, post_in
from ledger.journal.posting import transfer
from ledger.schema import Merchant

PASSWORD = "correct horse battery"


@dataclass
class World:
    fund: int
    community: int
    volunteer: int  # user id
    wallet: int  # account id
    other_volunteer: int
    other_wallet: int
    merchant_a: int
    merchant_a_account: int
    merchant_b: int
    merchant_b_account: int
    owner_a: int
    cashier_a: int
    owner_b: int
    cashier_b: int
    officer: int
    fund_manager: int
    admin: int


def build_world(books: Books, *, balance: int = 1000, password_hash: str | None = None) -> World:
    from ledger.access.identity import hash_password

    pw_hash = password_hash or hash_password(PASSWORD)

    def work(s: Session) -> World:
        donations = open_account_in(s, "donations", "donations").id
        fund = open_account_in(s, "fund", "fund").id
        open_account_in(s, "payout", "payout")
        district = create_org_unit_in(s, "panlong", "盘龙区", "district")
        community = create_org_unit_in(s, "jinsha", "金沙社区", "community", district.id)

        def user(name: str) -> int:
            return create_user_in(s, name, PASSWORD, name, password_hash=pw_hash).id

        def merchant(code: str) -> tuple[int, int]:
            acc = open_account_in(s, f"merchant:{code}", "merchant", owner_ref=f"merchant:{code}").id
            m = Merchant(code=code, name=f"{code} 小卖部", org_unit_id=community.id, status="active", account_id=acc)
            s.add(m)
            s.flush()
            return m.id, acc

        vol, other = user("vol"), user("vol2")
        grant_role_in(s, vol, "volunteer", community.id)
        grant_role_in(s, other, "volunteer", community.id)
        ma, ma_acc = merchant("shop-a")
        mb, mb_acc = merchant("shop-b")
        owner_a, cashier_a, owner_b, cashier_b = user("owner_a"), user("cashier_a"), user("owner_b"), user("cashier_b")
        grant_role_in(s, owner_a, "merchant_owner", merchant_id=ma)
        grant_role_in(s, cashier_a, "cashier", merchant_id=ma)
        grant_role_in(s, owner_b, "merchant_owner", merchant_id=mb)
        grant_role_in(s, cashier_b, "cashier", merchant_id=mb)
        officer, fm, admin = user("officer"), user("fm"), user("admin")
        grant_role_in(s, officer, "officer", community.id)
        grant_role_in(s, fm, "fund_manager")
        grant_role_in(s, admin, "admin")
        wallet, other_wallet = wallet_account_id(s, vol), wallet_account_id(s, other)
        post_in(s, books, [
            transfer("t:donate", "donate", donations, fund, 100 * balance),
            transfer("t:award:1", "award", fund, wallet, balance),
            transfer("t:award:2", "award", fund, other_wallet, balance),
        ])
        return World(fund, community.id, vol, wallet, other, other_wallet, ma, ma_acc, mb, mb_acc, owner_a,
                     cashier_a, owner_b, cashier_b, officer, fm, admin)

    return books.run(work)
