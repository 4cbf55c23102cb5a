"""Redemption use cases: redeem with a wallet code or a card, attacks, limits, holds, refunds, idempotency."""

from __future__ import annotations

import threading

import jwt
import pytest
from sqlalchemy import func, select

from ledger import redemption
from ledger.access.identity import Actor, Grant, load_actor
from ledger.access.tokens import issue_access_token
from ledger.errors import DomainError
from ledger.journal.accounts import expire_holds, get_account, set_account_status
from ledger.journal.verify import verify_books
from ledger.redemption import TillContext, codes
from ledger.schema import Merchant, Redemption, SpentCode
from tests.redemption_world import build_world


@pytest.fixture
def world(books):
    return build_world(books)


def as_user(books, user_id: int):
    """The principal a door would name for this signed-in user."""
    with books.session(readonly=True) as s:
        return load_actor(s, user_id)


def cashier(world, merchant: str = "a"):
    """A cashier's principal as the door loads it: their grants, no database needed here."""
    mid = world.merchant_a if merchant == "a" else world.merchant_b
    uid = world.cashier_a if merchant == "a" else world.cashier_b
    return Actor(uid, f"cashier_{merchant}", f"cashier_{merchant}", (Grant("cashier", None, mid),))


def till(world, merchant: str = "a"):
    mid = world.merchant_a if merchant == "a" else world.merchant_b
    return TillContext(mid, cashier(world, merchant))


def balances(books, world) -> tuple:
    return tuple((a.balance, a.on_hold) for a in (
        get_account(books, world.wallet), get_account(books, world.other_wallet),
        get_account(books, world.merchant_a_account), get_account(books, world.merchant_b_account)))


_n = iter(range(10**6))


def redeem(books, world, code: str, amount: int | None = 30, ctx=None, key: str | None = None, **kw):
    return redemption.redeem(books, ctx or till(world), code=code, amount=amount,
                             idempotency_key=key or f"k{next(_n)}", **kw)


def refused(books, world, error: str, fn) -> DomainError:
    before = balances(books, world)
    with pytest.raises(DomainError) as info:
        fn()
    assert info.value.code == error, info.value
    assert balances(books, world) == before
    return info.value


def test_redeem_moves_beans_and_answers_a_receipt(books, world, clock):
    code = codes.issue_wallet_code(books, world.wallet).code
    answer = redeem(books, world, code, 30)
    body = answer.json()
    assert not answer.replayed
    assert body["amount"] == 30 and body["status"] == "completed" and body["items"] == []
    assert body["merchant"]["id"] == world.merchant_a and body["time"] == "2026-11-27T09:00:00Z"
    assert isinstance(body["redemption_id"], int)
    assert get_account(books, world.wallet).balance == 970
    assert get_account(books, world.merchant_a_account).balance == 30
    assert verify_books(books).ok


def test_redeem_catalogue_items(books, world):
    owner_a, owner_b = as_user(books, world.owner_a), as_user(books, world.owner_b)
    tea = redemption.add_item(books, world.merchant_a, "普洱茶", 12, by=owner_a)
    rice = redemption.add_item(books, world.merchant_a, "米线", 8, by=owner_a)
    other = redemption.add_item(books, world.merchant_b, "elsewhere", 1, by=owner_b)
    code = codes.issue_wallet_code(books, world.wallet).code
    body = redeem(books, world, code, None, items=[{"item_id": tea["id"], "qty": 2}, {"item_id": rice["id"], "qty": 1}]
                  ).json()
    assert body["amount"] == 32
    assert [(i["name"], i["qty"], i["price"]) for i in body["items"]] == [("普洱茶", 2, 12), ("米线", 1, 8)]
    code2 = codes.issue_wallet_code(books, world.wallet).code
    refused(books, world, "unknown_item", lambda: redeem(books, world, code2, None, items=[{"item_id": other["id"]}]))
    redemption.update_item(books, world.merchant_a, tea["id"], active=False, by=owner_a)
    refused(books, world, "unknown_item", lambda: redeem(books, world, code2, None, items=[{"item_id": tea["id"]}]))


def test_attacks_are_refused_and_change_nothing(books, world, clock):
    key = books.keys.ensure("wallet")
    good = codes.issue_wallet_code(books, world.wallet).code
    redeem(books, world, good, 10)
    # a replayed code, even at another merchant
    refused(books, world, "code_already_used", lambda: redeem(books, world, good, 10))
    refused(books, world, "code_already_used", lambda: redeem(books, world, good, 10, ctx=till(world, "b")))

    fresh = codes.issue_wallet_code(books, world.wallet).code
    head, payload, sig = fresh.split(".")
    i = len(sig) // 2
    tampered = f"{head}.{payload}.{sig[:i]}{'A' if sig[i] != 'A' else 'B'}{sig[i + 1:]}"
    refused(books, world, "invalid_code", lambda: redeem(books, world, tampered))
    claims = jwt.decode(fresh, key.public, algorithms=["EdDSA"], audience="goldbean-till",
                        options={"verify_exp": False, "verify_iat": False})
    # the payload re-signed under the real kid with another key, to another wallet
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    forged = jwt.encode({**claims, "sub": str(world.other_wallet)}, Ed25519PrivateKey.generate(), algorithm="EdDSA",
                        headers={"kid": key.kid, "typ": codes.WALLET_TYP})
    refused(books, world, "invalid_code", lambda: redeem(books, world, forged))
    none = jwt.encode(claims, None, algorithm="none", headers={"kid": key.kid, "typ": codes.WALLET_TYP})
    refused(books, world, "invalid_code", lambda: redeem(books, world, none))
    wrong_aud = jwt.encode({**claims, "aud": "goldbean-api"}, key.private, algorithm="EdDSA",
                           headers={"kid": key.kid, "typ": codes.WALLET_TYP})
    refused(books, world, "invalid_code", lambda: redeem(books, world, wrong_aud))
    wrong_typ = jwt.encode(claims, key.private, algorithm="EdDSA", headers={"kid": key.kid, "typ": "JWT"})
    refused(books, world, "invalid_code", lambda: redeem(books, world, wrong_typ))
    unknown = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA",
                         headers={"kid": "ffffffffffffffff", "typ": codes.WALLET_TYP})
    refused(books, world, "unknown_key", lambda: redeem(books, world, unknown))
    early = jwt.encode({**claims, "iat": claims["iat"] + 300, "exp": claims["iat"] + 330}, key.private,
                       algorithm="EdDSA", headers={"kid": key.kid, "typ": codes.WALLET_TYP})
    refused(books, world, "code_not_yet_valid", lambda: redeem(books, world, early))

    # an API access token presented as a payment code
    with books.session(readonly=True) as s:
        actor = load_actor(s, world.volunteer)
    token, _ = issue_access_token(books, actor)
    refused(books, world, "invalid_code", lambda: redeem(books, world, token))

    clock.advance(91)
    refused(books, world, "code_expired", lambda: redeem(books, world, fresh))
    with books.session(readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(SpentCode)) == 1


def test_wallet_merchant_and_funds_rules(books, world):
    code = codes.issue_wallet_code(books, world.wallet).code
    refused(books, world, "insufficient_funds", lambda: redeem(books, world, code, 1001))
    set_account_status(books, world.wallet, "frozen")
    refused(books, world, "wallet_frozen", lambda: redeem(books, world, code, 5))
    set_account_status(books, world.wallet, "open")
    with books.session() as s:
        s.get(Merchant, world.merchant_a).status = "suspended"
    refused(books, world, "merchant_suspended", lambda: redeem(books, world, code, 5))
    # a refused redemption did not spend the code
    assert redeem(books, world, code, 5, ctx=till(world, "b")).json()["status"] == "completed"


def test_daily_limits(books, world, clock):
    books.settings = books.settings.with_overrides({"volunteer_daily_limit": 100, "redemption_hold_threshold": 1000})
    redeem(books, world, codes.issue_wallet_code(books, world.wallet).code, 60)
    err = refused(books, world, "limit_exceeded",
                  lambda: redeem(books, world, codes.issue_wallet_code(books, world.wallet).code, 41))
    assert err.details["limit"] == "volunteer"
    redeem(books, world, codes.issue_wallet_code(books, world.wallet).code, 40)
    # the next local day (UTC+8: 09:00 UTC is 17:00 in Kunming; 7 hours later is the next day)
    clock.advance(7 * 3600)
    redeem(books, world, codes.issue_wallet_code(books, world.wallet).code, 100)

    with books.session() as s:
        s.get(Merchant, world.merchant_b).daily_limit_beans = 50
    ctx_b = till(world, "b")
    redeem(books, world, codes.issue_wallet_code(books, world.other_wallet).code, 50, ctx=ctx_b)
    err = refused(books, world, "limit_exceeded",
                  lambda: redeem(books, world, codes.issue_wallet_code(books, world.other_wallet).code, 1, ctx=ctx_b))
    assert err.details["limit"] == "merchant"


def test_idempotent_retry_returns_the_same_answer_byte_for_byte(books, world, clock):
    code = codes.issue_wallet_code(books, world.wallet).code
    first = redeem(books, world, code, 25, key="till-1-0001")
    clock.advance(120)  # the code has expired by now: the retry is still answered from the record
    again = redeem(books, world, code, 25, key="till-1-0001")
    assert again.body == first.body and again.replayed
    assert get_account(books, world.wallet).balance == 975
    refused(books, world, "idempotency_conflict", lambda: redeem(books, world, code, 26, key="till-1-0001"))
    # keys are per merchant: the other merchant's same key is its own
    refused(books, world, "code_expired", lambda: redeem(books, world, code, 25, key="till-1-0001",
                                                         ctx=till(world, "b")))
    refused(books, world, "idempotency_key_required", lambda: redeem(books, world, code, 25, key="x" * 101))


def test_a_retry_writes_nothing_even_after_its_spent_code_was_pruned(books, world):
    """The code is spent in the same round trip as the key's claim (PostgreSQL): a retry answered from the
    store must leave no trace, even when housekeeping already pruned the spent code (shorter retention)."""
    code = codes.issue_wallet_code(books, world.wallet).code
    first = redeem(books, world, code, 25, key="till-1-0002")
    with books.session() as s:
        s.execute(SpentCode.__table__.delete())
    again = redeem(books, world, code, 25, key="till-1-0002")
    assert again.body == first.body and again.replayed
    with books.session(readonly=True) as s:
        assert s.scalar(select(func.count()).select_from(SpentCode)) == 0
        assert s.scalar(select(func.count()).select_from(Redemption)) == 1
    assert get_account(books, world.wallet).balance == 975


def test_hold_above_threshold_confirmed_by_the_volunteer(books, world):
    books.settings = books.settings.with_overrides({"redemption_hold_threshold": 200})
    body = redeem(books, world, codes.issue_wallet_code(books, world.wallet).code, 300).json()
    assert body["status"] == "awaiting_confirmation" and body["confirm_by"] == "2026-11-27T09:10:00Z"
    wallet = get_account(books, world.wallet)
    assert (wallet.balance, wallet.on_hold, wallet.available) == (1000, 300, 700)
    volunteer, other = as_user(books, world.volunteer), as_user(books, world.other_volunteer)
    overview = redemption.wallet_overview(books, volunteer)
    assert [r["redemption_id"] for r in overview["awaiting_confirmation"]] == [body["redemption_id"]]
    # somebody else cannot confirm it, nor a cashier
    for intruder in (other, cashier(world)):
        with pytest.raises(DomainError) as info:
            redemption.confirm_hold(books, intruder, body["redemption_id"])
        assert info.value.code == "not_found"
    view = redemption.confirm_hold(books, volunteer, body["redemption_id"])
    assert view["status"] == "completed"
    assert get_account(books, world.wallet).balance == 700
    assert get_account(books, world.merchant_a_account).balance == 300
    with pytest.raises(DomainError) as info:
        redemption.confirm_hold(books, volunteer, body["redemption_id"])
    assert info.value.code == "hold_not_awaiting"


def test_hold_voids_itself_when_not_confirmed(books, world, clock):
    body = redeem(books, world, codes.issue_wallet_code(books, world.wallet).code, 250).json()
    declined = redeem(books, world, codes.issue_wallet_code(books, world.wallet).code, 210).json()
    volunteer = as_user(books, world.volunteer)
    assert redemption.decline_hold(books, volunteer, declined["redemption_id"])["status"] == "declined"
    clock.advance(601)
    with pytest.raises(DomainError) as info:
        redemption.confirm_hold(books, volunteer, body["redemption_id"])
    assert info.value.code == "hold_not_awaiting"
    assert expire_holds(books) == 1
    wallet = get_account(books, world.wallet)
    assert (wallet.balance, wallet.on_hold) == (1000, 0)
    view = redemption.get_redemption(books, cashier(world), body["redemption_id"])
    assert view["status"] == "expired"


def test_refunds_are_bounded_windowed_and_per_merchant(books, world, clock):
    rid = redeem(books, world, codes.issue_wallet_code(books, world.wallet).code, 100).json()["redemption_id"]
    ctx = till(world)
    first = redemption.refund(books, ctx, rid, amount=30, idempotency_key="r1").json()
    assert (first["amount"], first["refunded_total"], first["remaining"]) == (30, 30, 70)
    # a retry is answered from the record; a different body under the same key is a conflict
    assert redemption.refund(books, ctx, rid, amount=30, idempotency_key="r1").json() == first
    refused(books, world, "idempotency_conflict",
            lambda: redemption.refund(books, ctx, rid, amount=31, idempotency_key="r1"))
    refused(books, world, "exceeds_refundable", lambda: redemption.refund(books, ctx, rid, amount=71,
                                                                          idempotency_key="r2"))
    # another merchant's till cannot see it
    refused(books, world, "not_found", lambda: redemption.refund(books, till(world, "b"), rid, idempotency_key="r3"))
    rest = redemption.refund(books, ctx, rid, idempotency_key="r4").json()
    assert (rest["amount"], rest["remaining"]) == (70, 0)
    refused(books, world, "exceeds_refundable", lambda: redemption.refund(books, ctx, rid, amount=1,
                                                                          idempotency_key="r5"))
    assert get_account(books, world.wallet).balance == 1000
    assert get_account(books, world.merchant_a_account).balance == 0

    old = redeem(books, world, codes.issue_wallet_code(books, world.wallet).code, 10).json()["redemption_id"]
    clock.advance(15 * 86400)
    refused(books, world, "refund_window_closed", lambda: redemption.refund(books, ctx, old, idempotency_key="r6"))
    assert verify_books(books).ok


def test_card_with_pin_lock_unlock_revoke_and_reissue(books, world):
    issued = redemption.issue_card(books, world.volunteer, f"user:{world.officer}", pin="2468")
    card_id, code = issued["card"]["id"], issued["code"]
    assert "pin" not in issued
    body = redeem(books, world, code, 20, pin="2468").json()
    assert body["method"] == "card" and body["amount"] == 20
    # the card is reusable (it is not single use like a wallet code)
    redeem(books, world, code, 5, pin="2468")
    refused(books, world, "pin_required", lambda: redeem(books, world, code, 5))
    for left in (4, 3, 2, 1):
        err = refused(books, world, "wrong_pin", lambda: redeem(books, world, code, 5, pin="0000"))
        assert err.details["tries_left"] == left
    err = refused(books, world, "wrong_pin", lambda: redeem(books, world, code, 5, pin="1111"))
    assert err.details["tries_left"] == 0
    # the sixth try is refused even with the right PIN
    refused(books, world, "card_locked", lambda: redeem(books, world, code, 5, pin="2468"))
    assert redemption.get_card(books, card_id)["status"] == "locked"
    redemption.unlock_card(books, card_id)
    redeem(books, world, code, 5, pin="2468")

    # lost: reissue revokes the old card at once
    new = redemption.issue_card(books, world.volunteer, f"user:{world.officer}")
    assert len(new["pin"]) == 6 and new["code"] != code
    refused(books, world, "card_revoked", lambda: redeem(books, world, code, 5, pin="2468"))
    redeem(books, world, new["code"], 5, pin=new["pin"])
    redemption.revoke_card(books, new["card"]["id"])
    refused(books, world, "card_revoked", lambda: redeem(books, world, new["code"], 5, pin=new["pin"]))
    assert get_account(books, world.wallet).balance == 1000 - 20 - 5 - 5 - 5


def test_tills_keys_authenticate_until_revoked(books, world):
    owner_a = as_user(books, world.owner_a)
    view, key = redemption.issue_till(books, world.merchant_a, "front counter", owner_a.ref, by=owner_a)
    ctx = redemption.authenticate_till(books, key)
    assert (ctx.merchant_id, ctx.till_id, ctx.actor) == (world.merchant_a, view["id"], f"till:{view['id']}")
    for bad in (key[:-1] + ("A" if key[-1] != "A" else "B"), "gbtill_999_" + key.split("_", 2)[2], "nonsense"):
        with pytest.raises(DomainError) as info:
            redemption.authenticate_till(books, bad)
        assert info.value.code == "invalid_till_key"
    with pytest.raises(DomainError) as info:
        redemption.revoke_till(books, world.merchant_b, view["id"], by=owner_a)  # not theirs
    assert info.value.code == "permission_denied"
    with pytest.raises(DomainError) as info:
        redemption.revoke_till(books, world.merchant_b, view["id"], by=as_user(books, world.owner_b))
    assert info.value.code == "not_found"
    with pytest.raises(DomainError) as info:  # a cashier is not the owner
        redemption.revoke_till(books, world.merchant_a, view["id"], by=cashier(world))
    assert info.value.code == "permission_denied"
    redemption.revoke_till(books, world.merchant_a, view["id"], by=owner_a)
    with pytest.raises(DomainError) as info:
        redemption.authenticate_till(books, key)
    assert info.value.code == "invalid_till_key"


# --- concurrency (PostgreSQL: row locks and unique-index waits; SQLite: BEGIN IMMEDIATE) -------------

def _race(n: int, fn) -> list:
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn(i)
        except DomainError as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_ten_tills_redeem_one_code_at_once_exactly_one_succeeds(books):
    world = build_world(books)
    code = codes.issue_wallet_code(books, world.wallet).code
    contexts = [till(world, "a" if i % 2 else "b") for i in range(10)]
    results = _race(10, lambda i: redemption.redeem(books, contexts[i], code=code, amount=40,
                                                     idempotency_key=f"till-{i}"))
    wins = [r for r in results if not isinstance(r, DomainError)]
    assert len(wins) == 1, results
    assert {r.code for r in results if isinstance(r, DomainError)} == {"code_already_used"}
    assert get_account(books, world.wallet).balance == 960
    assert verify_books(books).ok


def test_twenty_requests_with_one_idempotency_key_have_one_effect(books):
    world = build_world(books)
    code = codes.issue_wallet_code(books, world.wallet).code
    ctx = till(world)
    results = _race(20, lambda i: redemption.redeem(books, ctx, code=code, amount=40, idempotency_key="same"))
    assert all(not isinstance(r, DomainError) for r in results), results
    assert len({r.body for r in results}) == 1
    assert sum(not r.replayed for r in results) == 1
    assert get_account(books, world.wallet).balance == 960
    # and refunds likewise
    rid = results[0].json()["redemption_id"]
    refunds = _race(20, lambda i: redemption.refund(books, ctx, rid, amount=15, idempotency_key="ref"))
    assert len({r.body for r in refunds}) == 1
    assert get_account(books, world.wallet).balance == 975
    assert verify_books(books).ok


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_one_wallet_many_codes_at_once_never_deadlocks(books, world):
    """Each redemption writes its spent code (a foreign key to the wallet) before the journal locks the
    wallet; with FOR UPDATE those two locks deadlocked under contention until retries ran out."""
    wallet_codes = [codes.issue_wallet_code(books, world.wallet).code for _ in range(24)]
    barrier = threading.Barrier(12)
    outcomes: list[str] = []

    def worker(batch: list[str]) -> None:
        barrier.wait()
        for code in batch:
            try:
                redeem(books, world, code, 10)
                outcomes.append("ok")
            except DomainError as exc:
                outcomes.append(exc.code)

    threads = [threading.Thread(target=worker, args=(wallet_codes[i::12],)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 24, outcomes
    assert get_account(books, world.wallet).balance == 1000 - 240
    assert verify_books(books).ok


def test_concurrent_redemptions_never_pass_the_daily_limit_together(books, world):
    """The day's total is summed after the transfer has locked the wallet's account, so redemptions racing
    for the last of the limit are serialized: exactly as many succeed as the limit allows."""
    books.settings = books.settings.with_overrides({"volunteer_daily_limit": 100})
    wallet_codes = [codes.issue_wallet_code(books, world.wallet).code for _ in range(12)]
    results = _race(12, lambda i: redeem(books, world, wallet_codes[i], 30, ctx=till(world, "a" if i % 2 else "b")))
    wins = [r for r in results if not isinstance(r, DomainError)]
    assert len(wins) == 3, results  # 3 x 30 = 90; a fourth would make 120 > 100
    assert {r.code for r in results if isinstance(r, DomainError)} == {"limit_exceeded"}
    assert get_account(books, world.wallet).balance == 1000 - 90
    assert verify_books(books).ok


# --- PINs: throttled per card and per till, atomically ---------------------------------------------------

def _cards_of_new_holders(books, world, n: int, pin: str = "2468") -> list[tuple[int, str]]:
    """``n`` new people with 100 beans and a bean card each: (holder user id, card code)."""
    from ledger.access.identity import create_user_in
    from ledger.journal.accounts import post_in
    from ledger.journal.posting import transfer
    from tests.redemption_world import wallet_account_id

    def work(s):
        ids = [create_user_in(s, f"holder{i}", "pw", f"持卡人{i}").id for i in range(n)]
        post_in(s, books, [transfer(f"t:holder:{uid}", "award", world.fund, wallet_account_id(s, uid), 100)
                           for uid in ids])
        return ids

    holders = books.run(work)
    return [(uid, redemption.issue_card(books, uid, "test", pin)["code"]) for uid in holders]


def test_parallel_wrong_pins_at_one_till_never_pass_the_till_limit(books, world):
    """32 wrong PINs at once, across six cards of six people, at one till: the till's check and count are
    one atomic step, so wrong PINs are judged for no more holders than the limit allows (on PostgreSQL the
    old check-then-count in separate transactions let 17 to 19 through a limit of 10)."""
    from concurrent.futures import ThreadPoolExecutor

    from ledger.access import security

    cap = security.DEFAULT_LIMITS["failed_pin_cards_per_till"]
    cards = _cards_of_new_holders(books, world, 6)
    ctx = till(world)
    barrier = threading.Barrier(8)

    def attempt(i: int) -> tuple[int, str]:
        holder, code = cards[i % len(cards)]
        if i < 8:
            barrier.wait()
        try:
            redemption.redeem_at_till(books, ctx, "10.7.0.1", code=code, amount=1, pin=f"{1000 + i}",
                                      idempotency_key=f"par{i}")
            return holder, "ok"
        except DomainError as exc:
            return holder, exc.code

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(attempt, range(32)))
    judged = {holder for holder, outcome in results if outcome in ("wrong_pin", "card_locked")}
    assert len(judged) == cap, results
    assert {outcome for _, outcome in results} <= {"wrong_pin", "card_locked", "too_many_attempts"}
    assert sum(outcome == "wrong_pin" for _, outcome in results) <= cap * books.settings.redemption.max_pin_tries
    # and the till stays paused for every card, the right PIN included
    with pytest.raises(DomainError, match="too_many_attempts"):
        redemption.redeem_at_till(books, ctx, "10.7.0.1", code=cards[-1][1], amount=1, pin="2468",
                                  idempotency_key="after")


def test_one_customers_wrong_pins_never_stop_the_shop(books, world):
    """A customer who forgets their PIN locks their own card, however often they try; the next customer's
    card works at the same till."""
    (_, mine), (_, next_customer) = _cards_of_new_holders(books, world, 2)
    ctx = till(world)
    outcomes = []
    for i in range(15):
        try:
            redemption.redeem_at_till(books, ctx, "10.7.0.2", code=mine, amount=1, pin="1111", idempotency_key=f"m{i}")
        except DomainError as exc:
            outcomes.append(exc.code)
    assert outcomes == ["wrong_pin"] * 5 + ["card_locked"] * 10
    answer = redemption.redeem_at_till(books, ctx, "10.7.0.2", code=next_customer, amount=1, pin="2468",
                                       idempotency_key="next")
    assert answer.json()["status"] == "completed"


def test_the_owner_lifts_a_paused_till_and_it_is_logged(books, world):
    from ledger.access import security
    from ledger.access.identity import load_actor

    cards = _cards_of_new_holders(books, world, 4)
    ctx = till(world)
    for i, (_, code) in enumerate(cards[:3]):
        with pytest.raises(DomainError, match="wrong_pin"):
            redemption.redeem_at_till(books, ctx, "10.7.0.3", code=code, amount=1, pin="1111", idempotency_key=f"w{i}")
    with books.session(readonly=True) as s:
        owner, cashier, other_owner = (load_actor(s, world.owner_a), load_actor(s, world.cashier_a),
                                       load_actor(s, world.owner_b))
    assert redemption.paused_tills(books, cashier, world.merchant_a) == [ctx.actor]
    # another shop's till is not affected
    other = redemption.redeem_at_till(books, till(world, "b"), "10.7.0.3", code=cards[3][1], amount=1, pin="2468",
                                      idempotency_key="b1")
    assert other.json()["status"] == "completed"
    with pytest.raises(DomainError, match="permission_denied"):
        redemption.lift_till_pin_throttle(books, cashier, world.merchant_a, ctx.actor)
    with pytest.raises(DomainError, match="permission_denied"):
        redemption.lift_till_pin_throttle(books, other_owner, world.merchant_a, ctx.actor)
    with pytest.raises(DomainError, match="not_found"):
        redemption.lift_till_pin_throttle(books, owner, world.merchant_a, f"user:{world.cashier_b}")
    out = redemption.lift_till_pin_throttle(books, owner, world.merchant_a, ctx.actor, source="10.7.9.9")
    assert out["was_paused"] is True and redemption.paused_tills(books, owner, world.merchant_a) == []
    answer = redemption.redeem_at_till(books, ctx, "10.7.0.3", code=cards[3][1], amount=1, pin="2468",
                                       idempotency_key="after-lift")
    assert answer.json()["status"] == "completed"
    [lifted] = security.list_events(books, owner_admin(books, world), kind="pin_throttle_lifted")
    assert (lifted["actor"], lifted["source"], lifted["detail"]) == (f"user:{world.owner_a}", "10.7.9.9",
                                                                      {"till": ctx.actor})


def owner_admin(books, world):
    from ledger.access.identity import load_actor

    with books.session(readonly=True) as s:
        return load_actor(s, world.admin)


def test_a_payment_reaches_the_volunteers_stream_with_the_sale_and_a_refusal_leaves_none(books, world) -> None:
    """The announcement's outbox row travels with the redemption's COMMIT (``radar.announce_in``): one event
    for a sale, none for a refused one, none for a replay."""
    from ledger import radar

    books.listeners.append(radar.announce_in)
    volunteer = as_user(books, world.volunteer)
    _, start = radar.events_for(books, volunteer, after=0)
    code = codes.issue_wallet_code(books, world.wallet).code
    redeem(books, world, code, 30, key="paid-once")
    redeem(books, world, code, 30, key="paid-once")  # the till's retry: answered from the store
    refused(books, world, "insufficient_funds",
            lambda: redeem(books, world, codes.issue_wallet_code(books, world.wallet).code, 10**6))
    events, _ = radar.events_for(books, volunteer, after=start)
    payments = [e for e in events if e["event"] == "payment"]
    assert [(e["amount"], e.get("source")) for e in payments] == [(30, "till")], events
