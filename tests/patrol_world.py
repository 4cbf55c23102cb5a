"""The earning world plus one patrol post at building b1 of 金沙社区 and an evening shift (19:00–21:00 Beijing)
that officerA2 published, led by ``leader``; v1 and leader are volunteers there."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ledger import patrols
from ledger.patrols import Proof
from tests.earning_world import World, build_world

LAT, LON = 25.0500, 102.7200
# about 30 m north of the post
NEAR = (25.05027, 102.7200)
# about 1.1 km north
FAR = (25.0600, 102.7200)


@dataclass
class PatrolWorld:
    w: World
    post_id: int
    shift_id: int
    start: dt.datetime
    end: dt.datetime

    def sign(self) -> str:
        return patrols.post_sign(self.w.books, self.w.actor("officerA2"), self.post_id)["code"]

    def leader_code(self) -> str:
        return patrols.leader_code(self.w.books, self.w.actor("leader"), self.post_id)["code"]

    def by_sign(self, where: tuple[float, float] = NEAR, accuracy: float = 10) -> Proof:
        return Proof(post_sign=self.sign(), latitude=where[0], longitude=where[1], accuracy_m=accuracy)

    def by_code(self) -> Proof:
        return Proof(code=self.leader_code())


def build_patrol_world(books, *, needed: int = 3, beans_per_hour: int = 10, budget: int = 10_000) -> PatrolWorld:
    w = build_world(books, budget=budget)
    officer = w.actor("officerA2")
    post = patrols.create_post(books, officer, org_unit_id=w.units["b1"], name="金沙一组1栋岗", latitude=LAT,
                               longitude=LON, radius_m=50)
    now = books.now()  # 2026-11-27 09:00 UTC = 17:00 Beijing
    start = now + dt.timedelta(hours=2)
    end = start + dt.timedelta(hours=2)
    shift = patrols.publish_shift(books, officer, post_id=post.id, starts_at=start, ends_at=end, needed=needed,
                                  beans_per_hour=beans_per_hour, leader_id=w.users["leader"])
    return PatrolWorld(w, post.id, shift.id, start, end)
