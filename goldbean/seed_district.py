"""The demo district's people and places (issue 3): 盘龙区, its 12 street offices, communities,
a resident group and a building, the demo users (password ``goldbean``), a demo merchant, and some
claims and awards made through the real use cases. Idempotent: running it twice changes nothing."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import earning
from ledger.access.identity import (
    create_org_unit_in,
    create_user_in,
    grant_role_in,
    hash_password,
    load_actor,
)
from ledger.infra.books import Books
from ledger.journal.accounts import open_account_in
from ledger.schema import Account, Award, Claim, Merchant, User

DEMO_PASSWORD = "goldbean"

STREETS = (("tuodong", "拓东"), ("gulou", "鼓楼"), ("donghua", "东华"), ("lianmeng", "联盟"),
           ("jinchen", "金辰"), ("qingyun", "青云"), ("longquan", "龙泉"), ("caba", "茨坝"),
           ("shuanglong", "双龙"), ("songhua", "松华"), ("dianyuan", "滇源"), ("aziying", "阿子营"))
# community -> street (illustrative placement for the demo)
COMMUNITY_STREETS = (("jinsha", "金沙", "gulou"), ("wangqiying", "王旗营", "gulou"),
                     ("jinxing", "金星", "jinchen"), ("tianyuanlu", "田园路", "jinchen"),
                     ("tangzixiang", "塘子巷", "tuodong"), ("bailong", "白龙", "qingyun"))

# username, display name, pseudonym (shown on leaderboards), phone
DEMO_USERS = (
    ("admin", "系统管理员", None, None),
    ("officer", "李警官", None, "13800000001"),
    ("officer2", "王社工", None, "13800000002"),
    ("volunteer", "赵志愿者", "金沙小蜜蜂", "13900000001"),
    ("laozhang", "张阿姨", None, None),  # no phone: her group leader submits her claims
    ("leader", "陈组长", None, "13900000002"),
    ("cashier", "刘收银", None, "13700000001"),
    ("auditor", "周审计", None, None),
    ("fund", "吴基金", None, None),
)


@dataclass
class District:
    units: dict[str, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)
    merchant_id: int = 0
    merchant_account_id: int = 0


def _budget(s: Session, community_id: int, name: str) -> int:
    code = f"budget:{name}"
    acc = s.scalar(select(Account).where(Account.code == code))
    if acc is None:
        return open_account_in(s, code, "budget", name=f"{name}社区预算", owner_ref=f"org:{community_id}").id
    if acc.owner_ref is None:  # books seeded before the org tree existed
        acc.owner_ref = f"org:{community_id}"
    return acc.id


def seed_people(books: Books) -> District:
    """The org tree, the demo users and their roles, the community budgets and the demo merchant."""
    pw_hash = hash_password(DEMO_PASSWORD)  # one hash for all demo users: argon2 is slow on purpose

    def work(s: Session) -> District:
        d = District()
        district = create_org_unit_in(s, "panlong", "盘龙区", "district")
        d.units["panlong"] = district.id
        for code, name in STREETS:
            d.units[code] = create_org_unit_in(s, f"panlong.{code}", f"{name}街道", "street", district.id).id
        for code, name, street in COMMUNITY_STREETS:
            unit = create_org_unit_in(s, f"panlong.{street}.{code}", f"{name}社区", "community", d.units[street])
            d.units[code] = unit.id
            _budget(s, unit.id, name)
        group = create_org_unit_in(s, "panlong.gulou.jinsha.g1", "金沙社区第一居民小组", "group", d.units["jinsha"])
        d.units["jinsha.g1"] = group.id
        building = create_org_unit_in(s, "panlong.gulou.jinsha.g1.b3", "金沙小区3栋", "building", group.id)
        d.units["jinsha.g1.b3"] = building.id
        for username, display, pseudonym, phone in DEMO_USERS:
            user = create_user_in(s, username, DEMO_PASSWORD, display, phone=phone, pseudonym=pseudonym,
                                  show_pseudonym=pseudonym is not None, password_hash=pw_hash)
            d.users[username] = user.id
        merchant = s.scalar(select(Merchant).where(Merchant.code == "demo-shop"))
        if merchant is None:
            acc = s.scalar(select(Account).where(Account.code == "merchant:demo"))
            acc_id = acc.id if acc is not None else open_account_in(
                s, "merchant:demo", "merchant", name="金沙便民超市", owner_ref="merchant:demo").id
            merchant = Merchant(code="demo-shop", name="金沙便民超市", org_unit_id=d.units["jinsha"],
                                status="active", account_id=acc_id, daily_limit_beans=5000)
            s.add(merchant)
            s.flush()
            s.get(Account, acc_id).owner_ref = f"merchant:{merchant.id}"
        d.merchant_id, d.merchant_account_id = merchant.id, merchant.account_id
        u = d.users
        grant_role_in(s, u["admin"], "admin", actor="seed")
        grant_role_in(s, u["officer"], "officer", d.units["gulou"], actor="seed")  # a street office: 金沙 and 王旗营
        grant_role_in(s, u["officer2"], "officer", d.units["gulou"], actor="seed")
        grant_role_in(s, u["volunteer"], "volunteer", d.units["jinsha.g1.b3"], actor="seed")
        grant_role_in(s, u["laozhang"], "volunteer", d.units["jinsha.g1"], actor="seed")
        grant_role_in(s, u["leader"], "leader", d.units["jinsha.g1"], actor="seed")
        grant_role_in(s, u["leader"], "volunteer", d.units["jinsha.g1"], actor="seed")
        grant_role_in(s, u["cashier"], "cashier", merchant_id=merchant.id, actor="seed")
        grant_role_in(s, u["cashier"], "merchant_owner", merchant_id=merchant.id, actor="seed")
        grant_role_in(s, u["auditor"], "auditor", actor="seed")
        grant_role_in(s, u["fund"], "fund_manager", actor="seed")
        return d

    return books.run(work)


def seed_earning(books: Books, d: District) -> None:
    """A little history through the real use cases: verified patrols and tips, a direct award, one
    award waiting for a second officer, one claim waiting for verification."""
    with books.session(readonly=True) as s:
        if s.scalar(select(Claim.id).where(Claim.volunteer_id == d.users["volunteer"])) is not None:
            return
        officer = load_actor(s, d.users["officer"])
        volunteer = load_actor(s, d.users["volunteer"])
        leader = load_actor(s, d.users["leader"])
    # the history happened two days ago: today's daily caps are untouched, so a first tour's patrol is paid
    earlier = books.now() - dt.timedelta(days=2)
    books = dataclasses.replace(books, clock=lambda: earlier)
    now = books.now()
    start = (now - dt.timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    patrol = earning.submit_claim(books, volunteer, kind="patrol", org_unit_id=d.units["jinsha"],
                                  occurred_at=start, ended_at=start + dt.timedelta(hours=3), team="金沙夜巡队")
    earning.verify_claim(books, officer, patrol.id, reason="巡逻记录与排班表一致")
    tip = earning.submit_claim(books, volunteer, kind="tip", category="theft", description="楼下有人撬电动车锁",
                               location="金沙小区3栋车棚", occurred_at=now - dt.timedelta(hours=5))
    earning.verify_claim(books, officer, tip.id, reason="已移交派出所", tier="medium")
    for_zhang = earning.submit_claim(books, leader, kind="patrol", volunteer_id=d.users["laozhang"],
                                     org_unit_id=d.units["jinsha"], occurred_at=start,
                                     ended_at=start + dt.timedelta(hours=2), team="金沙夜巡队")
    earning.verify_claim(books, officer, for_zhang.id, reason="组长代报，已核实")
    big = earning.submit_claim(books, volunteer, kind="tip", category="fraud", description="发现电信诈骗窝点线索",
                               location="金沙小区附近", occurred_at=now - dt.timedelta(hours=3))
    earning.verify_claim(books, officer, big.id, reason="线索重大，待复核", tier="critical")  # needs officer2
    earning.award_directly(books, officer, volunteer_id=d.users["laozhang"], org_unit_id=d.units["jinsha"],
                           amount=20, reference="金沙社区防火巡查排班 2026-11", reason="消防通道清理", key="demo-1")
    earning.submit_claim(books, volunteer, kind="patrol", org_unit_id=d.units["jinsha"],
                         occurred_at=start + dt.timedelta(hours=4), ended_at=start + dt.timedelta(hours=6),
                         team="金沙夜巡队")


def demo_usernames() -> list[str]:
    """Every demo user's name, for the sign-in page and ``seed-demo``'s summary (one list, nobody left out)."""
    return [u[0] for u in DEMO_USERS]


def demo_users_text() -> str:
    return ("demo users (password 'goldbean'): " + ", ".join(u[0] for u in DEMO_USERS))


def users_by_name(books: Books) -> dict[str, int]:
    with books.session(readonly=True) as s:
        return dict(s.execute(select(User.username, User.id)).all())


def awards_count(books: Books) -> int:
    with books.session(readonly=True) as s:
        return len(s.scalars(select(Award.id)).all())
