"""PIN and password guessing: throttled per account (card, user), per till (PINs) and per source address (passwords), with a lock an officer can
lift; every attempt is in the security log; no balance changes."""

from __future__ import annotations

import uuid

from ledger.access import security
from ledger.access.identity import MAX_FAILED_LOGINS
from tests.redemption_world import PASSWORD

from .conftest import CARD_PIN, all_balances, auth


def sign_in(client, username: str, password: str, ip: str = "10.0.0.1"):
    return client.post("/api/v1/auth/token", json={"username": username, "password": password},
                       environ_base={"REMOTE_ADDR": ip})


def events(books, kind: str | None = None) -> list[dict]:
    from ledger.schema import SecurityEvent

    with books.session(readonly=True) as s:
        q = s.query(SecurityEvent).order_by(SecurityEvent.id)
        return [{"kind": e.kind, "username": e.username, "source": e.source, "user_id": e.user_id, "actor": e.actor}
                for e in q if kind is None or e.kind == kind]


def test_password_guessing_locks_the_account_and_an_officer_lifts_it(client, books, world):
    for _ in range(MAX_FAILED_LOGINS):
        r = sign_in(client, "vol", "wrong")
        assert (r.status_code, r.json["error"]) == (401, "invalid_credentials")
    # the right password no longer opens it, from any address
    r = sign_in(client, "vol", PASSWORD, ip="10.9.9.9")
    assert (r.status_code, r.json["error"]) == (429, "account_locked")
    # a cashier may not lift it; the officer of the volunteer's community may
    refused = client.post("/api/v1/security/unlock", json={"user_id": world.volunteer},
                          headers=auth(books, world.cashier_a))
    assert (refused.status_code, refused.json["error"]) == (403, "permission_denied")
    lifted = client.post("/api/v1/security/unlock", json={"user_id": world.volunteer, "reason": "called us"},
                         headers=auth(books, world.officer))
    assert lifted.status_code == 200 and lifted.json["was_locked"] is True
    assert sign_in(client, "vol", PASSWORD).status_code == 200
    kinds = [e["kind"] for e in events(books)]
    assert kinds.count("sign_in_failed") == MAX_FAILED_LOGINS + 1  # five wrong, one refused while locked
    assert kinds.count("sign_in_ok") == 1 and kinds.count("unlock") == 1
    unlock = events(books, "unlock")[0]
    assert unlock["user_id"] == world.volunteer and unlock["actor"] == f"user:{world.officer}"


def test_an_officer_out_of_scope_cannot_lift_a_lock(client, books, world):
    # the merchant's cashier is in no community: the officer's scope does not cover them
    r = client.post("/api/v1/security/unlock", json={"user_id": world.cashier_a}, headers=auth(books, world.officer))
    assert (r.status_code, r.json["error"]) == (403, "out_of_scope")
    r = client.post("/api/v1/security/unlock", json={"user_id": world.cashier_a}, headers=auth(books, world.admin))
    assert r.status_code == 200


def test_guessing_many_accounts_from_one_address_is_throttled(client, books, world):
    limit = security.DEFAULT_LIMITS["failed_sign_ins_per_ip"]
    for i in range(limit):
        r = sign_in(client, f"nobody{i}", "guess", ip="10.6.6.6")  # spraying: a new username each time
        assert r.json["error"] == "invalid_credentials"
    r = sign_in(client, "vol", PASSWORD, ip="10.6.6.6")  # even the right password, from that address
    assert (r.status_code, r.json["error"]) == (429, "too_many_attempts")
    assert sign_in(client, "vol", PASSWORD, ip="10.7.7.7").status_code == 200  # another address is not affected
    # an officer lifts the address's throttle
    r = client.post("/api/v1/security/unlock", json={"source": "10.6.6.6"}, headers=auth(books, world.officer))
    assert r.status_code == 200
    assert sign_in(client, "vol", PASSWORD, ip="10.6.6.6").status_code == 200
    assert len(events(books, "sign_in_throttled")) == 1


def test_the_throttle_window_passes(client, books, world, clock):
    limit = security.DEFAULT_LIMITS["failed_sign_ins_per_ip"]
    for i in range(limit):
        sign_in(client, f"x{i}", "guess", ip="10.5.5.5")
    assert sign_in(client, "vol", PASSWORD, ip="10.5.5.5").json["error"] == "too_many_attempts"
    clock.advance(security.THROTTLE_WINDOW.total_seconds() + 1)
    assert sign_in(client, "vol", PASSWORD, ip="10.5.5.5").status_code == 200


def redeem_with_pin(client, books, world, code: str, pin: str, ip: str = "10.1.1.1"):
    return client.post("/api/v1/redemptions", json={"code": code, "amount": 5, "pin": pin},
                       headers={**auth(books, world.cashier_a), "Idempotency-Key": uuid.uuid4().hex},
                       environ_base={"REMOTE_ADDR": ip})


def test_pin_guessing_locks_the_card_and_an_officer_unlocks_it(client, books, world, card_code):
    before = all_balances(books)
    errors_seen = [redeem_with_pin(client, books, world, card_code, "0000").json["error"] for _ in range(5)]
    assert errors_seen == ["wrong_pin"] * 5
    r = redeem_with_pin(client, books, world, card_code, CARD_PIN)
    assert (r.status_code, r.json["error"]) == (403, "card_locked")
    assert all_balances(books) == before
    from ledger.schema import Card

    with books.session(readonly=True) as s:
        card_id = s.query(Card.id).scalar()
    assert client.post(f"/api/v1/cards/{card_id}/unlock", headers=auth(books, world.officer)).status_code == 200
    assert redeem_with_pin(client, books, world, card_code, CARD_PIN).status_code == 201
    kinds = [e["kind"] for e in events(books)]
    assert kinds.count("pin_failed") == 6 and kinds.count("pin_ok") == 1
    assert events(books, "unlock")[0]["actor"] == f"user:{world.officer}"  # the card's unlock is logged too


def test_pin_guessing_across_cards_pauses_the_till_until_its_owner_lifts_it(client, books, world, card_code):
    """Wrong PINs for several card holders at one till pause that till (a stack of found cards), whatever
    the card; one customer's own card never does; the owner lifts the pause through the API, logged."""
    from ledger import redemption
    from ledger.access.identity import load_actor

    cap = security.DEFAULT_LIMITS["failed_pin_cards_per_till"]
    with books.session(readonly=True) as s:
        officer = load_actor(s, world.officer)
    other_card = redemption.issue_card(books, world.other_volunteer, officer.ref, CARD_PIN, by=officer)["code"]
    before = all_balances(books)
    for i in range(10):  # one customer, one card: locked, but the shop goes on
        r = redeem_with_pin(client, books, world, card_code, f"{1000 + i}", ip="10.2.2.2")
        assert r.json["error"] in ("wrong_pin", "card_locked")
    assert redeem_with_pin(client, books, world, other_card, CARD_PIN, ip="10.2.2.2").status_code == 201
    assert cap == 3
    # a third holder's card with a wrong PIN after the first two: the till is paused for every card
    third = redemption.issue_card(books, world.owner_b, "test", CARD_PIN)["code"]
    assert redeem_with_pin(client, books, world, other_card, "9999", ip="10.2.2.2").json["error"] == "wrong_pin"
    assert redeem_with_pin(client, books, world, third, "9999", ip="10.2.2.2").json["error"] == "wrong_pin"
    r = redeem_with_pin(client, books, world, other_card, CARD_PIN, ip="10.2.2.3")
    assert (r.status_code, r.json["error"]) == (429, "too_many_attempts")
    assert events(books, "pin_throttled")[0]["actor"] == f"user:{world.cashier_a}"
    lift = f"/api/v1/merchants/{world.merchant_a}/tills/pin-throttle/lift"
    body = {"till": f"user:{world.cashier_a}"}
    r = client.post(lift, json=body, headers=auth(books, world.cashier_a))
    assert (r.status_code, r.json["error"]) == (403, "permission_denied")
    r = client.post(lift, json=body, headers=auth(books, world.owner_a), environ_base={"REMOTE_ADDR": "10.2.9.9"})
    assert r.status_code == 200 and r.json["was_paused"] is True
    [lifted] = events(books, "pin_throttle_lifted")
    assert (lifted["actor"], lifted["source"]) == (f"user:{world.owner_a}", "10.2.9.9")
    assert redeem_with_pin(client, books, world, other_card, CARD_PIN, ip="10.2.2.2").status_code == 201
    assert all_balances(books) != before  # the two good sales went through


def test_the_web_sign_in_form_is_throttled_and_logged_too(client, books, world):
    from tests.admin_ui.conftest import csrf_of

    def web_sign_in(password: str, ip: str):
        page = client.get("/signin", environ_base={"REMOTE_ADDR": ip})
        return client.post("/signin", data={"username": "vol", "password": password,
                                            "csrf_token": csrf_of(page.text)}, environ_base={"REMOTE_ADDR": ip})

    assert web_sign_in("wrong", "10.8.8.8").status_code == 401
    assert events(books, "sign_in_failed")[-1]["source"] == "10.8.8.8"
    for i in range(security.DEFAULT_LIMITS["failed_sign_ins_per_ip"]):
        sign_in(client, f"spray{i}", "guess", ip="10.8.8.9")
    assert web_sign_in(PASSWORD, "10.8.8.9").status_code == 401  # refused from that address, page shown
    assert events(books, "sign_in_throttled")[-1]["source"] == "10.8.8.9"
    assert web_sign_in(PASSWORD, "10.8.8.10").status_code == 302
