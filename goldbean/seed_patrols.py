"""The demo district's patrol deployment: four posts around 金沙社区 (at its first resident group, its
building 3, the community's office and the market gate) and a recurring evening patrol at each (every
evening 19:00–21:00, 3 volunteers, 陈组长 leading the group's post), published through the real use cases."""

from __future__ import annotations

from typing import Any

from ledger import patrols
from ledger.access.identity import load_actor
from ledger.infra.books import Books

# name, unit, latitude, longitude (金沙社区, 盘龙区, Kunming: illustrative places a few hundred metres apart)
POSTS = (("金沙一组巡逻岗", "jinsha.g1", 25.0612, 102.7336),
         ("一组3栋楼下岗", "jinsha.g1.b3", 25.0627, 102.7361),
         ("金沙社区服务站岗", "jinsha", 25.0589, 102.7318),
         ("金沙农贸市场门口岗", "jinsha", 25.0596, 102.7374))


def seed_patrols(books: Books, district: Any) -> int:
    """Publish the demo posts and their evening series; returns how many shifts the series made."""
    officer = books.run(lambda s: load_actor(s, district.users["officer"]), readonly=True)
    today = books.calendar.today(books.now())
    made = 0
    for i, (name, unit, lat, lon) in enumerate(POSTS):
        post = patrols.create_post(books, officer, org_unit_id=district.units[unit], name=name, latitude=lat,
                                   longitude=lon, radius_m=60)
        made += patrols.publish_series(books, officer, post_id=post.id, start_time="19:00", duration_minutes=120,
                                       first_day=today, needed=3,
                                       leader_id=district.users["leader"] if i == 0 else None).shifts_created
    return made
