"""checkin-burst: 1,000 volunteers checking in to 100 posts within one minute at a shift change, over HTTP
(gunicorn as ``goldbean serve`` runs it) on PostgreSQL, driven from another process.

``run_checkin_burst(server_url, work)`` builds a district in a scratch database: 10 communities with 10
posts each (on resident groups), one evening shift per post starting four minutes after the build,
needing 10 volunteers and led by a team leader, 1,000 volunteers signed up (10 a post), and a month of
history behind it (30 earlier shifts a post, their sign-ups checked out and paid, the leader codes they
used), so that the tables are not empty when the plans are made. Then it starts ``gunicorn -c
python:goldbean.serve`` with the default worker count and runs the load generator (``python -m
bench.checkin_burst loadgen ...``) in its own process.

Each volunteer arrives once, at a moment drawn uniformly within 60 s (open loop: latency is measured from
the scheduled moment, so a slow server cannot hide queueing), and:

- 70 %: the leader's phone fetches a fresh rotating code (``GET /posts/{id}/code`` with the leader's token)
  and the volunteer sends it (``POST /shifts/{id}/check-in {code}``);
- 30 %: the printed post sign with the phone's location, 5 to 40 m from the post, accuracy 10 m.

Planted bad ones, ``PLANTED`` of each, every one followed by the volunteer's honest check-in:

- ``wrong_post``: a code fetched from another post's leader;
- ``outside_post_radius``: the post sign with a location 1.1 km away;
- ``leader_code_replayed``: a code another volunteer already used;
- ``already_checked_in``: a second check-in after the first.

Reports p50 and p99 of the check-in requests (planted ones included) and of the code fetches, refusals
by code (any refusal but the planted ones is a failure), the volunteers checked in at the end, and the
machine's load average (``os.getloadavg()``) before and after: the machine is shared.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.http_burst import (
    ROOT,
    Client,
    cpu_seconds,
    create_scratch_database,
    drop_scratch_database,
    load_note,
    measure_for_report,
    pct,
    run_loadgen,
    run_schedule,
    server_from_environment,
    start_gunicorn,
    stop_gunicorn,
)

COMMUNITIES = 10
POSTS_PER_COMMUNITY = 10
PER_POST = 10  # volunteers on each post's shift
WINDOW_S = 60.0
CODE_SHARE = 0.7
PLANTED = 10  # of each kind
HISTORY_DAYS = 30
LAT0, LON0 = 25.0400, 102.7100  # Kunming, 盘龙区
PLANTED_CODES = ("wrong_post", "outside_post_radius", "leader_code_replayed", "already_checked_in")


def _post_place(i: int) -> tuple[float, float]:
    """Posts on a 10 × 10 grid about 300 m apart."""
    return LAT0 + (i // 10) * 0.0027, LON0 + (i % 10) * 0.003


def build_district(url: str, instance: Path) -> dict[str, Any]:
    """The district, its posts and shifts, 1,000 volunteers signed up and a month of history; returns what
    the load generator needs (tokens, signs, shift and post ids)."""
    from sqlalchemy.orm import Session

    from ledger import patrols
    from ledger.access.identity import create_org_unit_in, create_user_in, grant_role_in, hash_password, load_actor
    from ledger.access.tokens import issue_access_token
    from ledger.infra.books import Books
    from ledger.infra.db import make_engine
    from ledger.infra.keys import KeyStore

    books = Books(engine=make_engine(url), keys=KeyStore(instance / "keys"))
    pw = hash_password("bench password 1")

    def people(s: Session) -> dict[str, Any]:
        district = create_org_unit_in(s, "panlong", "盘龙区", "district")
        street = create_org_unit_in(s, "panlong.a", "鼓楼街道", "street", district.id)
        officer = create_user_in(s, "bench-officer", "unused", "民警", password_hash=pw).id
        grant_role_in(s, officer, "officer", street.id)
        groups, leaders, volunteers = [], [], []
        for c in range(COMMUNITIES):
            community = create_org_unit_in(s, f"panlong.a.c{c}", f"社区{c}", "community", street.id)
            for g in range(POSTS_PER_COMMUNITY):
                i = c * POSTS_PER_COMMUNITY + g
                group = create_org_unit_in(s, f"panlong.a.c{c}.g{g}", f"{g + 1}组", "group", community.id)
                groups.append(group.id)
                leader = create_user_in(s, f"bench-leader{i}", "unused", f"队长{i}", password_hash=pw).id
                grant_role_in(s, leader, "leader", group.id)
                grant_role_in(s, leader, "volunteer", group.id)
                leaders.append(leader)
                for v in range(PER_POST):
                    uid = create_user_in(s, f"bench-v{i}-{v}", "unused", f"志愿者{i}-{v}", password_hash=pw).id
                    grant_role_in(s, uid, "volunteer", group.id)
                    volunteers.append(uid)
        return {"officer": officer, "groups": groups, "leaders": leaders, "volunteers": volunteers}

    world = books.run(people)
    officer = books.run(lambda s: load_actor(s, world["officer"]), readonly=True)
    posts = [patrols.create_post(books, officer, org_unit_id=g, name=f"巡逻岗{i + 1}", latitude=_post_place(i)[0],
                                 longitude=_post_place(i)[1], radius_m=50).id
             for i, g in enumerate(world["groups"])]
    seed_history(books, posts, world)
    start = books.now().replace(microsecond=0) + dt.timedelta(seconds=240)
    shifts = [patrols.publish_shift(books, officer, post_id=p, starts_at=start, ends_at=start + dt.timedelta(hours=2),
                                    needed=PER_POST, leader_id=world["leaders"][i]).id
              for i, p in enumerate(posts)]
    actors = books.run(lambda s: {u: load_actor(s, u) for u in world["volunteers"] + world["leaders"]},
                       readonly=True)
    for n, uid in enumerate(world["volunteers"]):
        patrols.sign_up(books, actors[uid], shifts[n // PER_POST])
    signs = [patrols.post_sign(books, officer, p)["code"] for p in posts]
    tokens = {str(u): issue_access_token(books, a)[0] for u, a in actors.items()}
    books.engine.dispose()
    return {"posts": posts, "shifts": shifts, "signs": signs, "leaders": world["leaders"],
            "volunteers": world["volunteers"], "tokens": tokens, "places": [_post_place(i) for i in range(len(posts))],
            "starts_at": start.isoformat()}


def seed_history(books: Any, posts: list[int], world: dict[str, Any]) -> None:
    """A month of evening shifts before this one, with their sign-ups checked out and the leader codes
    used, written in bulk (what the pages would have written, without the journal: check-in does not read it)."""
    from sqlalchemy import insert, select

    from ledger.schema import PatrolShift, PatrolSignup, UsedLeaderCode

    now = books.now().replace(microsecond=0)
    with books.engine.begin() as c:
        rows = []
        for d in range(HISTORY_DAYS, 0, -1):
            start = now - dt.timedelta(days=d)
            for i, p in enumerate(posts):
                rows.append({"post_id": p, "starts_at": start, "ends_at": start + dt.timedelta(hours=2),
                             "needed": PER_POST, "beans_per_hour": 10, "insurance_required": False,
                             "leader_id": world["leaders"][i], "status": "open", "version": 1,
                             "created_by_id": world["officer"], "created_at": start - dt.timedelta(days=1)})
        c.execute(insert(PatrolShift), rows)
        shifts = c.execute(select(PatrolShift.id, PatrolShift.post_id, PatrolShift.starts_at)).all()
        index = {p: i for i, p in enumerate(posts)}
        signups, used = [], []
        for sid, pid, starts in shifts:
            i = index[pid]
            for v in range(PER_POST):
                uid = world["volunteers"][i * PER_POST + v]
                signups.append({"shift_id": sid, "volunteer_id": uid, "status": "checked_out",
                                "signed_up_at": starts - dt.timedelta(days=1), "seen_version": 1,
                                "checked_in_at": starts, "check_in_proof": "leader_code",
                                "checked_out_at": starts + dt.timedelta(hours=2), "check_out_proof": "leader_code",
                                "minutes": 120, "beans": 20, "attendance": "recorded"})
                used.append({"jti": f"hist-{sid}-{v}", "shift_id": sid, "volunteer_id": uid, "used_at": starts,
                             "expires_at": starts + dt.timedelta(seconds=30)})
        for k in range(0, len(signups), 5000):
            c.execute(insert(PatrolSignup), signups[k:k + 5000])
            c.execute(insert(UsedLeaderCode), used[k:k + 5000])
    if books.engine.dialect.name == "postgresql":
        with books.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM ANALYZE")


def run_checkin_burst(server_url: str, work: Path, *, workers: int | None = None,
                      keep_server: bool = False) -> dict[str, Any]:
    """Returns the load generator's figures plus the checked-in count and the load average; raises on set-up
    failure. ``workers`` overrides gunicorn's default worker count (``goldbean serve``: 2 × CPUs + 1, at most 8)."""
    from sqlalchemy import create_engine, func, select

    from goldbean.migrate import upgrade
    from ledger.schema import PatrolSignup

    name = f"goldbean_bench_checkin_{os.getpid()}"
    admin, url = create_scratch_database(server_url, name)
    instance = work / "checkin-instance"
    instance.mkdir(parents=True, exist_ok=True)
    server = None
    try:
        upgrade(url)
        world = build_district(url, instance)
        world_file = work / "checkin-world.json"
        world_file.write_text(json.dumps({**world, "url": url, "instance": str(instance)}))
        server, port, n_workers = start_gunicorn(url, instance, work / "checkin-gunicorn.log", workers)
        load_before = os.getloadavg()
        cpu_before = cpu_seconds(server.pid)
        res = run_loadgen("bench.checkin_burst", world_file, port, WINDOW_S + 240)
        load_after = os.getloadavg()
        cpu_used = cpu_seconds(server.pid) - cpu_before
        engine = create_engine(url)
        with engine.connect() as c:
            res["checked_in"] = c.scalar(select(func.count(PatrolSignup.id)).where(
                PatrolSignup.shift_id.in_(world["shifts"]), PatrolSignup.status == "checked_in"))
        engine.dispose()
        res["server_cpu_ms_per_request"] = cpu_used * 1000 / max(1, res["requests"] + res["code_requests"])
        res.update(workers=n_workers, load_before=load_before, load_after=load_after,
                   volunteers=len(world["volunteers"]), posts=len(world["posts"]))
        if keep_server:
            res["port"], res["url"] = port, url
            input(f"server on 127.0.0.1:{port} ({url}); Enter stops it ")
        return res
    finally:
        stop_gunicorn(server)
        drop_scratch_database(admin, name)


# --- the load generator (its own process) ---------------------------------------------------------

def _plan(world: dict[str, Any], rnd: random.Random) -> list[dict[str, Any]]:
    """Each volunteer's arrival moment, proof and planted misstep (if any)."""
    n = len(world["volunteers"])
    order = list(range(n))
    rnd.shuffle(order)
    planted = {}
    for k, kind in enumerate(PLANTED_CODES):
        for idx in order[k * PLANTED:(k + 1) * PLANTED]:
            planted[idx] = kind
    plans = []
    for idx in range(n):
        kind = planted.get(idx)
        by_code = kind in ("wrong_post", "leader_code_replayed") or (
            kind != "outside_post_radius" and rnd.random() < CODE_SHARE)
        plans.append({"idx": idx, "at": rnd.uniform(0, WINDOW_S), "by_code": by_code, "planted": kind,
                      "metres": rnd.uniform(5, 40), "bearing": rnd.uniform(0, 360)})
    plans.sort(key=lambda p: p["at"])
    return plans


def _near(place: tuple[float, float], metres: float, bearing: float) -> tuple[float, float]:
    import math

    dlat = metres * math.cos(math.radians(bearing)) / 111_320
    dlon = metres * math.sin(math.radians(bearing)) / (111_320 * math.cos(math.radians(place[0])))
    return place[0] + dlat, place[1] + dlon


def loadgen(world_file: str, port: int) -> dict[str, Any]:
    world = json.loads(Path(world_file).read_text())
    rnd = random.Random(16)
    plans = _plan(world, rnd)
    client = Client(port)
    tokens = world["tokens"]
    checkins: list[float] = []
    fetches: list[float] = []
    refusals: Counter[str] = Counter()
    unexpected: list[str] = []
    used_codes: dict[int, tuple[float, str]] = {}  # post index -> (when, the last code used there)
    done_planted: Counter[str] = Counter()
    lock = threading.Lock()

    def leader_code(post_index: int, due: float | None = None) -> str:
        t0 = due if due is not None else time.perf_counter()
        status, body = client.call("GET", f"/api/v1/posts/{world['posts'][post_index]}/code",
                                   tokens[str(world["leaders"][post_index])])
        with lock:
            fetches.append((time.perf_counter() - t0) * 1000)
        if status != 200:
            raise RuntimeError(f"leader code: HTTP {status} {body}")
        return body["code"]

    def check_in(plan: dict[str, Any], body: dict[str, Any], due: float | None) -> str | None:
        i = plan["idx"] // PER_POST
        uid = world["volunteers"][plan["idx"]]
        t0 = time.perf_counter()
        status, answer = client.call("POST", f"/api/v1/shifts/{world['shifts'][i]}/check-in", tokens[str(uid)], body)
        done = time.perf_counter()
        with lock:
            # the first request of an arrival counts from its scheduled moment (queueing in the client shows)
            checkins.append(((done - due) if due is not None else (done - t0)) * 1000)
        if status == 200:
            return None
        code = answer.get("error") if isinstance(answer, dict) else f"HTTP {status}"
        with lock:
            refusals[code] += 1
        return code

    def honest(plan: dict[str, Any], due: float | None) -> dict[str, Any]:
        i = plan["idx"] // PER_POST
        if plan["by_code"]:
            # the leader's phone fetches the code (timed from the arrival); the check-in is timed from then on
            body = {"code": leader_code(i, due)}
            due = None
        else:
            lat, lon = _near(tuple(world["places"][i]), plan["metres"], plan["bearing"])
            body = {"post_sign": world["signs"][i], "latitude": lat, "longitude": lon, "accuracy_m": 10}
        code = check_in(plan, body, due)
        if code is not None:
            with lock:
                unexpected.append(f"{code} for volunteer {plan['idx']}")
        return body

    def arrive(plan: dict[str, Any], due: float) -> None:
        i = plan["idx"] // PER_POST
        kind = plan["planted"]
        first_due: float | None = due
        if kind == "wrong_post":
            other = (i + 1 + plan["idx"] % 50) % len(world["posts"])
            got = check_in(plan, {"code": leader_code(other, due)}, None)
            first_due = None
        elif kind == "outside_post_radius":
            lat, lon = _near(tuple(world["places"][i]), 1100, plan["bearing"])
            got = check_in(plan, {"post_sign": world["signs"][i], "latitude": lat, "longitude": lon,
                                  "accuracy_m": 10}, due)
            first_due = None
        elif kind == "leader_code_replayed":
            with lock:
                last = used_codes.get(i)
            stolen = last[1] if last and time.perf_counter() - last[0] < 20 else None
            if stolen is None:  # no fresh code used at this post yet: an honest arrival instead
                kind = None
            else:
                got = check_in(plan, {"code": stolen}, due)
                first_due = None
        if kind in ("wrong_post", "outside_post_radius", "leader_code_replayed"):
            with lock:
                done_planted[kind] += 1
                if got != kind:
                    unexpected.append(f"planted {kind} answered {got}")
        body = honest(plan, first_due)
        if "code" in body:
            with lock:
                used_codes[i] = (time.perf_counter(), body["code"])
        if kind == "already_checked_in":
            got = check_in(plan, body if "post_sign" in body else {"code": leader_code(i)}, None)
            with lock:
                done_planted[kind] += 1
                if got != kind:
                    unexpected.append(f"planted {kind} answered {got}")

    # warm each worker's connection and caches with a few reads before the window opens (not counted)
    warm = [client.call("GET", "/api/v1/shifts?mine=true&limit=1", tokens[str(world["volunteers"][k])])[0]
            for k in range(8)]
    if any(s != 200 for s in warm):
        raise RuntimeError(f"warm-up failed: {warm}")
    elapsed = run_schedule(plans, arrive, lock, unexpected)

    return {"p50_ms": pct(checkins, 0.50), "p99_ms": pct(checkins, 0.99), "max_ms": max(checkins, default=None),
            "requests": len(checkins), "code_p50_ms": pct(fetches, 0.50), "code_p99_ms": pct(fetches, 0.99),
            "code_requests": len(fetches), "refusals": dict(refusals), "unexpected": unexpected[:20],
            "unexpected_count": len(unexpected), "elapsed_s": elapsed,
            "planted": dict(done_planted)}


def summary(res: dict[str, Any]) -> str:
    planted_ok = res["refusals"] == res["planted"] and not res["unexpected_count"]
    return (f"check-in p50 {res['p50_ms']:.0f} ms, p99 {res['p99_ms']:.0f} ms (max {res['max_ms']:.0f}) over "
            f"{res['requests']} requests; leader code p50 {res['code_p50_ms']:.0f} / p99 {res['code_p99_ms']:.0f} ms; "
            f"{res['checked_in']}/{res['volunteers']} checked in; refusals {res['refusals']} "
            f"({'only the planted ones' if planted_ok else 'NOT only the planted: ' + str(res['unexpected'][:3])}); "
            f"gunicorn {res['workers']} workers, {res['server_cpu_ms_per_request']:.1f} CPU ms a request; load avg {res['load_before'][0]:.1f} before, "
            f"{res['load_after'][0]:.1f} after")


def add_figures(server: str | None, work: Path, figure: Any, add: Any, log: Any) -> None:
    """``make bench``'s part: runs the burst on the PostgreSQL server (if any) and adds its figures."""
    res = measure_for_report("checkin-burst", "1,000 volunteers checking in to 100 posts within one minute", run_checkin_burst, server, work, figure, add, log)
    if res is None:
        return
    log(f"  {summary(res)}")
    clean = res["refusals"] == res["planted"] and not res["unexpected_count"] and res["checked_in"] == res["volunteers"]
    load = load_note(res)
    refused = ", ".join(f"{k} {v}" for k, v in sorted(res["refusals"].items()))
    add(figure("checkin-burst-p50", res["p50_ms"], "ms", note=f"{res['requests']} check-ins; {load}"))
    add(figure("checkin-burst-p99", res["p99_ms"], "ms", target="<= 200",
               note=f"gunicorn {res['workers']} workers; {res['checked_in']}/{res['volunteers']} checked in; refusals: "
                    f"{refused} " + ("(only the planted ones)" if clean else f"NOT only the planted: {res['unexpected'][:3]}")
                    + f"; {load}"))
    add(figure("checkin-burst-code-p99", res["code_p99_ms"], "ms", note=f"the leader's code, {res['code_requests']} fetches"))
    add(figure("checkin-burst-cpu", res["server_cpu_ms_per_request"], "CPU ms/request",
               note="gunicorn workers' user+system CPU per request (check-ins and code fetches): what a busy shared "
                    "machine does not inflate"))


def main(argv: list[str]) -> int:
    if argv and argv[0] == "loadgen":
        sys.path.insert(0, str(ROOT))
        print(json.dumps(loadgen(argv[1], int(argv[2]))))
        return 0
    import argparse
    import tempfile

    sys.path.insert(0, str(ROOT))
    ap = argparse.ArgumentParser(description="checkin-burst alone (make bench runs it too)")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the server up after the run (to profile it)")
    args = ap.parse_args(argv)
    server = server_from_environment()
    if server is None:
        return 2
    work = Path(tempfile.mkdtemp(prefix="goldbean-checkin-"))
    res = run_checkin_burst(server, work, workers=args.workers, keep_server=args.keep)
    print(json.dumps(res, indent=1, default=str))
    print(summary(res))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
