"""A small district for the earning tests: two streets, three communities, officers, volunteers, a
leader, the fund manager, an auditor, an admin, a cashier; the fund donated and the budgets allocated."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from goldbean.seed import seed_ledger
from ledger import earning
from ledger.access.identity import (
    Actor,
    create_org_unit_in,
    create_user_in,
    grant_role_in,
    hash_password,
    load_actor,
)
from ledger.infra.books import Books
from ledger.journal.accounts import open_account_in
from ledger.schema import Merchant

PW = "pw"
_HASH = None


@dataclass
class World:
    books: Books
    units: dict[str, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)

    def actor(self, name: str) -> Actor:
        with self.books.session(readonly=True) as s:
            return load_actor(s, self.users[name])


def build_world(books: Books, *, budget: int = 10_000, donated: int = 100_000) -> World:
    global _HASH
    if _HASH is None:
        _HASH = hash_password(PW)
    seed_ledger(books)
    w = World(books)

    def work(s):
        u = w.units
        u["district"] = create_org_unit_in(s, "d", "盘龙区", "district").id
        u["streetA"] = create_org_unit_in(s, "d.a", "鼓楼街道", "street", u["district"]).id
        u["streetB"] = create_org_unit_in(s, "d.b", "金辰街道", "street", u["district"]).id
        u["c1"] = create_org_unit_in(s, "d.a.c1", "金沙社区", "community", u["streetA"]).id
        u["c2"] = create_org_unit_in(s, "d.a.c2", "王旗营社区", "community", u["streetA"]).id
        u["c3"] = create_org_unit_in(s, "d.b.c3", "金星社区", "community", u["streetB"]).id
        u["g1"] = create_org_unit_in(s, "d.a.c1.g1", "一组", "group", u["c1"]).id
        u["b1"] = create_org_unit_in(s, "d.a.c1.g1.b1", "1栋", "building", u["g1"]).id
        people = {
            "officerA": [("officer", u["streetA"])],
            "officerA2": [("officer", u["c1"])],
            "officerA3": [("officer", u["streetA"])],
            "officerB": [("officer", u["streetB"])],
            "v1": [("volunteer", u["b1"])],
            "v2": [("volunteer", u["c3"])],
            "v3": [("volunteer", u["c2"])],
            "leader": [("leader", u["g1"]), ("volunteer", u["g1"])],
            "fund": [("fund_manager", None)],
            "auditor": [("auditor", None)],
            "admin": [("admin", None)],
            "cashier": [],
        }
        for name, grants in people.items():
            user = create_user_in(s, name, PW, name.title(), password_hash=_HASH,
                                  pseudonym="Bee" if name == "v3" else None, show_pseudonym=name == "v3")
            w.users[name] = user.id
            for role, unit in grants:
                grant_role_in(s, user.id, role, unit)
        acc = open_account_in(s, "merchant:shop", "merchant", name="shop")
        m = Merchant(code="shop", name="shop", org_unit_id=u["c1"], status="active", account_id=acc.id)
        s.add(m)
        s.flush()
        grant_role_in(s, w.users["cashier"], "cashier", merchant_id=m.id)

    books.run(work)
    fund = w.actor("fund")
    earning.record_donation(books, fund, amount=donated, donor="anon", key="d0")
    for c in ("c1", "c2", "c3"):
        earning.allocate_budget(books, fund, org_unit_id=w.units[c], amount=budget, key=f"a0-{c}")
    return w


def patrol(w: World, who: str, community: str, hours: float, *, ago_h: float | None = None,
           by: str | None = None):
    now = w.books.now()
    start = now - dt.timedelta(hours=hours + 1 if ago_h is None else ago_h)
    return earning.submit_claim(w.books, w.actor(by or who), kind="patrol", volunteer_id=w.users[who],
                                org_unit_id=w.units[community], occurred_at=start,
                                ended_at=start + dt.timedelta(hours=hours), team="night")


def tip(w: World, who: str, *, ago_h: float = 1, by: str | None = None):
    return earning.submit_claim(w.books, w.actor(by or who), kind="tip", volunteer_id=w.users[who],
                                category="theft", description="saw a bike lock cut", location="building 1",
                                police_case_ref="PL-1", occurred_at=w.books.now() - dt.timedelta(hours=ago_h))
