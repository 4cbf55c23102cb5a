"""survey-burst: a paid survey pushed to a community and answered by 1,000 volunteers within one minute, over
HTTP (gunicorn as ``goldbean serve`` runs it) on PostgreSQL, driven from another process.

``run_survey_burst(server_url, work)`` builds a community in a scratch database: a street, one community of
10 groups with 100 volunteers each, the officer who runs its surveys, the fund donated and the community's
budget allocated. The officer publishes a survey to the whole community (a single choice and a scale, both
required, and an optional text), ``REWARD`` beans a complete response, at most ``MAX_SHARE`` × the volunteers
responses: publishing holds reward × maximum from the budget into the survey's reserve. Then it starts
``gunicorn -c python:goldbean.serve`` with the default worker count and runs the load generator (``python -m
bench.survey_burst loadgen ...``) in its own process.

Each volunteer arrives once, at a moment drawn uniformly within the window (60 s; open loop: latency is
measured from the scheduled moment, so a slow server cannot hide queueing), and answers
(``POST /api/v1/surveys/{id}/responses``). Every response is paid its reward from the survey's hold, in the
transaction that holds the survey's row lock: that row is the hot one.

Planted bad ones, ``PLANTED`` of each, each followed by nothing else:

- ``survey_already_answered``: a second answer from a volunteer whose first was paid;
- ``survey_answer_invalid``: an answer without the required scale question (that volunteer is never paid).

Reports p50 and p99 of the answers (the planted ones included), refusals by code (any refusal but the
planted ones is a failure), the workers' CPU per request and the load average before and after (the
machine is shared); then reads the database: the honest volunteers paid once each and nobody else, the
survey's remaining hold, and that the hold plus what was paid is the reward budget held at publishing.
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

VOLUNTEERS = 1_000
GROUPS = 10
WINDOW_S = 60.0
PLANTED = 5  # of each kind
REWARD = 5  # beans per complete response
MAX_SHARE = 1.2  # the survey asks for more responses than will come: a hold is left at the end
PLANTED_CODES = ("survey_already_answered", "survey_answer_invalid")


def build_community(url: str, instance: Path, volunteers: int) -> dict[str, Any]:
    """The community, its volunteers and officer, the budget, the survey published; returns what the load
    generator and the final check need (tokens, question ids, the survey and its budget)."""
    from sqlalchemy.orm import Session

    from goldbean.seed import seed_ledger
    from ledger import earning, surveys
    from ledger.access.identity import create_org_unit_in, create_user_in, grant_role_in, hash_password, load_actor
    from ledger.access.tokens import issue_access_token
    from ledger.infra.books import Books
    from ledger.infra.db import make_engine
    from ledger.infra.keys import KeyStore

    books = Books(engine=make_engine(url), keys=KeyStore(instance / "keys"))
    pw = hash_password("bench password 1")
    seed_ledger(books)

    def people(s: Session) -> dict[str, Any]:
        district = create_org_unit_in(s, "panlong", "盘龙区", "district")
        street = create_org_unit_in(s, "panlong.a", "鼓楼街道", "street", district.id)
        community = create_org_unit_in(s, "panlong.a.c0", "金沙社区", "community", street.id)
        officer = create_user_in(s, "bench-officer", "unused", "民警", password_hash=pw).id
        grant_role_in(s, officer, "officer", community.id)
        fund = create_user_in(s, "bench-fund", "unused", "基金", password_hash=pw).id
        grant_role_in(s, fund, "fund_manager", None)
        groups = [create_org_unit_in(s, f"panlong.a.c0.g{g}", f"{g + 1}组", "group", community.id).id
                  for g in range(GROUPS)]
        people = []
        for v in range(volunteers):
            uid = create_user_in(s, f"bench-v{v}", "unused", f"志愿者{v}", password_hash=pw).id
            grant_role_in(s, uid, "volunteer", groups[v % GROUPS])
            people.append(uid)
        return {"community": community.id, "officer": officer, "fund": fund, "volunteers": people}

    world = books.run(people)
    actors = books.run(lambda s: {u: load_actor(s, u) for u in [world["officer"], world["fund"],
                                                                 *world["volunteers"]]}, readonly=True)
    max_responses = max(1, int(volunteers * MAX_SHARE))
    budget = REWARD * max_responses
    earning.record_donation(books, actors[world["fund"]], amount=2 * budget, donor="bench", key="bench-d0")
    earning.allocate_budget(books, actors[world["fund"]], org_unit_id=world["community"], amount=2 * budget,
                            key="bench-a0")
    survey = surveys.create_survey(
        books, actors[world["officer"]], org_unit_id=world["community"], title="夜间巡逻满意度调查",
        questions=[{"kind": "single", "text": "夜里走在小区里安心吗?", "options": ["安心", "一般", "不安心"]},
                   {"kind": "scale", "text": "巡逻队的表现打几分?", "scale_max": 5},
                   {"kind": "text", "text": "还有什么建议?", "required": False}],
        reward=REWARD, max_responses=max_responses, closes_at=books.now() + dt.timedelta(days=7), publish=True)
    tokens = {str(u): issue_access_token(books, actors[u])[0] for u in world["volunteers"]}
    books.engine.dispose()
    return {"survey": survey.id, "questions": [q.id for q in survey.questions], "volunteers": world["volunteers"],
            "tokens": tokens, "reward": REWARD, "max_responses": max_responses, "budget": budget}


def check_books(url: str, world: dict[str, Any], honest: set[int]) -> dict[str, Any]:
    """From the database: who was paid (once each, the honest volunteers only), the survey's remaining hold,
    the reserve's balance, and whether hold + paid = the reward budget held at publishing."""
    from sqlalchemy import create_engine, func, select

    from ledger.schema import Account, Survey, SurveyRespondent, Transfer

    sid = world["survey"]
    engine = create_engine(url)
    with engine.connect() as c:
        survey = c.execute(select(Survey.responses, Survey.paid_responses, Survey.hold_key,
                                  Survey.reserve_account_id).where(Survey.id == sid)).one()
        respondents = c.execute(select(SurveyRespondent.user_id, SurveyRespondent.paid)
                                .where(SurveyRespondent.survey_id == sid)).all()
        pays = c.execute(select(Transfer.transfer_key, Transfer.amount, Account.owner_ref)
                         .join(Account, Account.id == Transfer.credit_account_id)
                         .where(Transfer.transfer_key.like(f"survey:{sid}:pay:%"))).all()
        held = 0
        if survey.hold_key is not None:
            pending = c.execute(select(Transfer.id, Transfer.amount).where(Transfer.transfer_key == survey.hold_key)).one()
            resolved = c.scalar(select(func.count(Transfer.id)).where(Transfer.pending_id == pending.id))
            held = 0 if resolved else pending.amount
        reserve = c.execute(select(Account).where(Account.id == survey.reserve_account_id)).one()
    engine.dispose()
    paid_to = Counter(int(ref.split(":")[1]) for _, _, ref in pays)
    paid = sum(amount for _, amount, _ in pays)
    reserve_balance = reserve.credits_posted - reserve.debits_posted
    return {"responses": survey.responses, "paid_responses": survey.paid_responses, "paid_count": len(pays),
            "paid_beans": paid, "held": held, "budget": world["budget"], "reserve_balance": reserve_balance,
            "respondents": len(respondents), "honest": len(honest),
            "paid_once": (set(paid_to) == honest and all(n == 1 for n in paid_to.values())
                          and {u for u, _ in respondents} == honest
                          and all(p == world["reward"] for _, p in respondents)
                          and all(a == world["reward"] for _, a, _ in pays)),
            "books_balance": held + paid == world["budget"] and reserve_balance == 0}


def run_survey_burst(server_url: str, work: Path, *, volunteers: int = VOLUNTEERS, window_s: float = WINDOW_S,
                     planted: int = PLANTED, workers: int | None = None, keep_server: bool = False) -> dict[str, Any]:
    """Returns the load generator's figures plus the database's account of the payments and the load
    average; raises on set-up failure. ``workers`` overrides gunicorn's default worker count."""
    from goldbean.migrate import upgrade

    name = f"goldbean_bench_survey_{os.getpid()}"
    admin, url = create_scratch_database(server_url, name)
    instance = work / "survey-instance"
    instance.mkdir(parents=True, exist_ok=True)
    server = None
    try:
        upgrade(url)
        world = build_community(url, instance, volunteers)
        world_file = work / "survey-world.json"
        world_file.write_text(json.dumps({**world, "window_s": window_s, "planted": planted}))
        server, port, n_workers = start_gunicorn(url, instance, work / "survey-gunicorn.log", workers)
        warm_up(world, port)
        load_before = os.getloadavg()
        cpu_before = cpu_seconds(server.pid)
        res = run_loadgen("bench.survey_burst", world_file, port, window_s + 240)
        load_after = os.getloadavg()
        cpu_used = cpu_seconds(server.pid) - cpu_before
        invalid = set(res.pop("invalid_volunteers"))
        res["books"] = check_books(url, world, set(world["volunteers"]) - invalid)
        res["server_cpu_ms_per_request"] = cpu_used * 1000 / max(1, res["requests"])
        res.update(workers=n_workers, load_before=load_before, load_after=load_after, volunteers=volunteers,
                   window_s=window_s)
        if keep_server:
            res["port"], res["url"] = port, url
            input(f"server on 127.0.0.1:{port} ({url}); Enter stops it ")
        return res
    finally:
        stop_gunicorn(server)
        drop_scratch_database(admin, name)


def warm_up(world: dict[str, Any], port: int) -> None:
    """A few reads of the survey before the window opens, to warm the workers' caches: neither timed nor in
    the CPU per answer."""
    client = Client(port)
    warm = [client.call("GET", f"/api/v1/surveys/{world['survey']}", world["tokens"][str(uid)])[0]
            for uid in world["volunteers"][:8]]
    if any(s != 200 for s in warm):
        raise RuntimeError(f"warm-up failed: {warm}")


# --- the load generator (its own process) ---------------------------------------------------------

def _plan(world: dict[str, Any], rnd: random.Random) -> list[dict[str, Any]]:
    """Each volunteer's arrival moment, answers and planted misstep (if any)."""
    n = len(world["volunteers"])
    order = list(range(n))
    rnd.shuffle(order)
    k = world["planted"]
    planted = {idx: kind for i, kind in enumerate(PLANTED_CODES) for idx in order[i * k:(i + 1) * k]}
    plans = []
    for idx in range(n):
        answers: dict[str, Any] = {str(world["questions"][0]): rnd.choice(["安心", "一般", "不安心"]),
                                   str(world["questions"][1]): rnd.randint(1, 5)}
        if rnd.random() < 0.3:
            answers[str(world["questions"][2])] = "路灯再多装几盏"
        plans.append({"idx": idx, "at": rnd.uniform(0, world["window_s"]), "planted": planted.get(idx),
                      "answers": answers})
    plans.sort(key=lambda p: p["at"])
    return plans


def loadgen(world_file: str, port: int) -> dict[str, Any]:
    world = json.loads(Path(world_file).read_text())
    plans = _plan(world, random.Random(20))
    client = Client(port)
    path = f"/api/v1/surveys/{world['survey']}/responses"
    latencies: list[float] = []
    refusals: Counter[str] = Counter()
    planted: Counter[str] = Counter()
    unexpected: list[str] = []
    invalid: list[int] = []
    lock = threading.Lock()

    def answer(plan: dict[str, Any], answers: dict[str, Any], due: float | None) -> str | None:
        uid = world["volunteers"][plan["idx"]]
        t0 = time.perf_counter()
        status, body = client.call("POST", path, world["tokens"][str(uid)], {"answers": answers})
        done = time.perf_counter()
        with lock:
            # the first request of an arrival counts from its scheduled moment (queueing in the client shows)
            latencies.append(((done - due) if due is not None else (done - t0)) * 1000)
        if status == 201 and isinstance(body, dict) and body.get("paid") == world["reward"]:
            return None
        code = body.get("error") if isinstance(body, dict) and "error" in body else f"HTTP {status} {body}"[:80]
        with lock:
            refusals[code] += 1
        return code

    def arrive(plan: dict[str, Any], due: float) -> None:
        kind = plan["planted"]
        if kind == "survey_answer_invalid":  # the required scale left out; nothing else follows
            answers = {q: a for q, a in plan["answers"].items() if q != str(world["questions"][1])}
            got = answer(plan, answers, due)
            with lock:
                invalid.append(world["volunteers"][plan["idx"]])
        else:
            got = answer(plan, plan["answers"], due)
            if got is not None:
                with lock:
                    unexpected.append(f"{got} for volunteer {plan['idx']}")
                return
            if kind == "survey_already_answered":
                got = answer(plan, plan["answers"], None)
        if kind is not None:
            with lock:
                planted[kind] += 1
                if got != kind:
                    unexpected.append(f"planted {kind} answered {got}")

    elapsed = run_schedule(plans, arrive, lock, unexpected)
    return {"p50_ms": pct(latencies, 0.50), "p99_ms": pct(latencies, 0.99), "max_ms": max(latencies, default=None),
            "requests": len(latencies), "refusals": dict(refusals), "planted": dict(planted),
            "unexpected": unexpected[:20], "unexpected_count": len(unexpected), "elapsed_s": elapsed,
            "invalid_volunteers": invalid}


def clean(res: dict[str, Any]) -> bool:
    """Only the planted refusals, every honest volunteer paid once and nobody else, and the books balance."""
    books = res["books"]
    return (res["refusals"] == res["planted"] and not res["unexpected_count"] and books["paid_once"]
            and books["books_balance"])


def _refused(res: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(res["refusals"].items())) or "none"


def summary(res: dict[str, Any]) -> str:
    b = res["books"]
    return (f"answer p50 {res['p50_ms']:.0f} ms, p99 {res['p99_ms']:.0f} ms (max {res['max_ms']:.0f}) over "
            f"{res['requests']} requests from {res['volunteers']} volunteers in {res['window_s']:.0f} s; "
            f"{b['responses']} responses, {b['paid_count']}/{b['honest']} honest paid "
            f"({'once each' if b['paid_once'] else 'NOT once each'}), {b['held']} beans still held, "
            f"{b['held']} + {b['paid_beans']} {'=' if b['books_balance'] else '!='} {b['budget']}; refusals "
            f"{_refused(res)} ({'only the planted ones' if clean(res) else 'NOT clean: ' + str(res['unexpected'][:3])}); "
            f"gunicorn {res['workers']} workers, {res['server_cpu_ms_per_request']:.1f} CPU ms a request; "
            f"{load_note(res)}")


def add_figures(server: str | None, work: Path, figure: Any, add: Any, log: Any) -> None:
    """``make bench``'s part: runs the burst on the PostgreSQL server (if any) and adds its figures."""
    res = measure_for_report("survey-burst", "1,000 volunteers answering a paid survey within one minute", run_survey_burst, server, work, figure, add, log)
    if res is None:
        return
    log(f"  {summary(res)}")
    b, load = res["books"], load_note(res)
    add(figure("survey-burst-p50", res["p50_ms"], "ms", note=f"{res['requests']} answers; {load}"))
    add(figure("survey-burst-p99", res["p99_ms"], "ms", target="<= 200",
               note=f"gunicorn {res['workers']} workers; {b['responses']} responses, {b['paid_count']}/{b['honest']} "
                    f"honest paid {'once each' if b['paid_once'] else 'NOT once each'}; {b['held']} beans still held "
                    f"(held + paid {'=' if b['books_balance'] else '!='} budget {b['budget']}); refusals: "
                    f"{_refused(res)} " + ("(only the planted ones)" if clean(res) else
                                           f"NOT only the planted: {res['unexpected'][:3]}") + f"; {load}"))
    add(figure("survey-burst-cpu", res["server_cpu_ms_per_request"], "CPU ms/request",
               note="gunicorn workers' user+system CPU per answer: what a busy shared machine does not inflate"))


def main(argv: list[str]) -> int:
    if argv and argv[0] == "loadgen":
        sys.path.insert(0, str(ROOT))
        print(json.dumps(loadgen(argv[1], int(argv[2]))))
        return 0
    import argparse
    import tempfile

    sys.path.insert(0, str(ROOT))
    ap = argparse.ArgumentParser(description="survey-burst alone (make bench runs it too)")
    ap.add_argument("--volunteers", type=int, default=VOLUNTEERS)
    ap.add_argument("--window", type=float, default=WINDOW_S, help="seconds over which they arrive")
    ap.add_argument("--planted", type=int, default=PLANTED, help="bad answers of each kind")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the server up after the run (to profile it)")
    args = ap.parse_args(argv)
    server = server_from_environment()
    if server is None:
        return 2
    work = Path(tempfile.mkdtemp(prefix="goldbean-survey-"))
    res = run_survey_burst(server, work, volunteers=args.volunteers, window_s=args.window, planted=args.planted,
                           workers=args.workers, keep_server=args.keep)
    print(json.dumps(res, indent=1, default=str))
    print(summary(res))
    return 0 if clean(res) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
