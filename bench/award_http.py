"""award-http: officers verifying claims over HTTP (``POST /api/v1/claims/{id}/verify``), the award path.

``build_award_world(url, instance, officers, claims_each)`` builds a district in a scratch database:
``COMMUNITIES`` communities, each with its budget, ``officers`` officers spread over them (one
community each), one volunteer per officer, and ``claims_each`` submitted patrol claims per volunteer
(bulk inserted: submitting is not what is measured). Each officer verifies its own volunteer's claims
(a patrol of an hour: ``patrol_beans_per_hour`` beans from the community's budget to the wallet).

The caps are raised by ``SETTINGS`` (``GOLDBEAN_LEDGER_SETTINGS``) so that thousands of awards a day stay
inside them: every cap is still summed and checked on every award. The load generator is the one of
``bench.redeem_http`` (``kind="award"``).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

COMMUNITIES = 8
SETTINGS = {"earning": {"volunteer_daily_cap": 10**9, "volunteer_monthly_cap": 10**9, "officer_daily_cap": 10**9,
                        "approval_threshold": 1000}}


def write_settings(instance: Path) -> Path:
    path = instance / "bench-settings.json"
    path.write_text(json.dumps(SETTINGS))
    return path


def build_award_world(url: str, instance: Path, officers: int, claims_each: int) -> dict[str, Any]:
    """Returns {"officers": [user ids], "claims": [[claim ids officer i verifies], ...]}."""
    from sqlalchemy import insert
    from sqlalchemy.orm import Session

    from goldbean.seed import seed_ledger
    from ledger import earning
    from ledger.access.identity import create_org_unit_in, create_user_in, grant_role_in, hash_password, load_actor
    from ledger.earning.models import Claim
    from ledger.infra.books import Books
    from ledger.infra.db import make_engine
    from ledger.infra.keys import KeyStore
    from ledger.infra.settings import Settings

    books = Books(engine=make_engine(url), keys=KeyStore(instance / "keys"), settings=Settings.from_mapping(SETTINGS))
    seed_ledger(books)
    pw = hash_password("bench password 1")

    def people(s: Session) -> dict[str, Any]:
        district = create_org_unit_in(s, "d", "盘龙区", "district")
        street = create_org_unit_in(s, "d.a", "鼓楼街道", "street", district.id)
        communities = [create_org_unit_in(s, f"d.a.c{j}", f"社区 {j}", "community", street.id).id
                       for j in range(COMMUNITIES)]
        fund = create_user_in(s, "benchfund", "unused", "fund", password_hash=pw).id
        grant_role_in(s, fund, "fund_manager", None)
        pairs = []
        for i in range(officers):
            community = communities[i % COMMUNITIES]
            officer = create_user_in(s, f"benchofficer{i}", "unused", f"officer {i}", password_hash=pw).id
            grant_role_in(s, officer, "officer", community)
            volunteer = create_user_in(s, f"benchvol{i}", "unused", f"vol {i}", password_hash=pw).id
            grant_role_in(s, volunteer, "volunteer", community)
            pairs.append((officer, volunteer, community))
        return {"fund": fund, "communities": communities, "pairs": pairs}

    world = books.run(people)
    with books.session(readonly=True) as s:
        fund = load_actor(s, world["fund"])
    per_community = officers * claims_each * 20 // COMMUNITIES + 10**6
    earning.record_donation(books, fund, amount=per_community * COMMUNITIES, donor="bench", key="bench:donation")
    for j, c in enumerate(world["communities"]):
        earning.allocate_budget(books, fund, org_unit_id=c, amount=per_community, key=f"bench:budget:{j}")
    now = books.now()
    start = now - dt.timedelta(hours=3)
    claims: list[list[int]] = []
    with books.session() as s:
        conn = s.connection()
        for _officer, volunteer, community in world["pairs"]:
            rows = [{"kind": "patrol", "status": "submitted", "volunteer_id": volunteer, "submitted_by_id": volunteer,
                     "org_unit_id": community, "occurred_at": start + dt.timedelta(seconds=k),
                     "ended_at": start + dt.timedelta(seconds=k, hours=1), "team": "night", "submitted_at": now}
                    for k in range(claims_each)]
            ids = conn.execute(insert(Claim.__table__).returning(Claim.__table__.c.id), rows).scalars().all()
            claims.append(sorted(ids))
    books.keys.ensure("access")  # the key exists before the server starts
    books.engine.dispose()
    return {"officers": [p[0] for p in world["pairs"]], "claims": claims}


def access_tokens(instance: Path, officers: list[int]) -> list[str]:
    """A fresh access token per officer (they live 15 minutes), signed with the instance's own key."""
    from ledger.access.identity import Actor
    from ledger.access.tokens import issue_access_token
    from ledger.infra.books import Books
    from ledger.infra.keys import KeyStore

    books = Books(engine=None, keys=KeyStore(instance / "keys"))  # type: ignore[arg-type]
    return [issue_access_token(books, Actor(o, f"benchofficer{i}", "", ()))[0] for i, o in enumerate(officers)]
