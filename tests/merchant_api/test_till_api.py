"""The till, wallet, card, catalogue and settlement endpoints, end to end over HTTP."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from doors import books_of
from ledger.access.identity import load_actor
from ledger.access.tokens import issue_access_token
from ledger.journal.accounts import get_account
from ledger.journal.verify import verify_books
from ledger.redemption import codes
from tests.qr import decode_qr
from tests.redemption_world import build_world


@pytest.fixture
def books(app):
    return books_of(app)


@pytest.fixture
def world(books):
    return build_world(books)


def auth(books, user_id: int) -> dict[str, str]:
    with books.session(readonly=True) as s:
        actor = load_actor(s, user_id)
    token, _ = issue_access_token(books, actor)
    return {"Authorization": f"Bearer {token}"}


def gb(runner, args: list[str]):
    from goldbean.cli import main

    return runner.invoke(main, args)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


_n = iter(range(10**6))


def balances(books, world) -> tuple:
    return tuple((a.balance, a.on_hold) for a in (
        get_account(books, world.wallet), get_account(books, world.merchant_a_account),
        get_account(books, world.merchant_b_account)))


def redeem(client, books, world, body: dict, *, user: int | None = None, key: str | None = None,
           headers: dict | None = None):
    h = dict(headers) if headers is not None else auth(books, user or world.cashier_a)
    h["Idempotency-Key"] = key or f"key-{next(_n)}"
    return client.post("/api/v1/redemptions", json=body, headers=h)


def wallet_code(client, books, world) -> str:
    resp = client.post("/api/v1/wallet/codes", headers=auth(books, world.volunteer))
    assert resp.status_code == 201, resp.json
    return resp.json["code"]


def test_wallet_code_endpoint_qr_and_redeem_receipt(client, books, world):
    resp = client.post("/api/v1/wallet/codes", headers=auth(books, world.volunteer))
    assert resp.status_code == 201
    body = resp.json
    assert set(body) == {"code", "qr_png", "expires_in", "number"} and 0 < body["expires_in"] <= 60
    assert decode_qr(base64.b64decode(body["qr_png"])) == body["code"]
    assert codes.verify_code(books, body["code"]).wallet_account_id == world.wallet

    r = redeem(client, books, world, {"code": body["code"], "amount": 35})
    assert r.status_code == 201, r.json
    receipt = r.json
    assert receipt["amount"] == 35 and receipt["merchant"]["id"] == world.merchant_a
    assert {"redemption_id", "amount", "items", "merchant", "time"} <= set(receipt)

    wallet = client.get("/api/v1/wallet", headers=auth(books, world.volunteer)).json
    assert (wallet["balance"], wallet["available"], wallet["on_hold"]) == (965, 965, 0)
    assert wallet["history"][0]["kind"] == "redeem" and wallet["history"][0]["amount"] == -35
    assert client.post("/api/v1/wallet/codes").status_code == 401


def test_idempotency_key_replays_byte_for_byte(client, books, world, clock):
    code = wallet_code(client, books, world)
    first = redeem(client, books, world, {"code": code, "amount": 20}, key="abc-1")
    clock.advance(5)
    again = redeem(client, books, world, {"code": code, "amount": 20}, key="abc-1")
    assert (again.status_code, again.data) == (first.status_code, first.data)
    assert get_account(books, world.wallet).balance == 980
    conflict = redeem(client, books, world, {"code": code, "amount": 21}, key="abc-1")
    assert (conflict.status_code, conflict.json["error"]) == (422, "idempotency_conflict")
    missing = client.post("/api/v1/redemptions", json={"code": code, "amount": 20}, headers=auth(books, world.cashier_a))
    assert (missing.status_code, missing.json["error"]) == (422, "idempotency_key_required")


def _attack_codes(books, world, clock) -> dict[str, tuple[str, int, str]]:
    key = books.keys.ensure("wallet")
    now = int(clock.now.timestamp())
    claims = {"iss": "goldbean", "aud": "goldbean-till", "sub": str(world.wallet), "jti": "attack-jti-0001",
              "iat": now, "exp": now + 60}

    def signed(c: dict, private=key.private, kid: str = key.kid, typ: str = codes.WALLET_TYP) -> str:
        return jwt.encode(c, private, algorithm="EdDSA", headers={"kid": kid, "typ": typ})

    good = signed({**claims, "jti": "attack-jti-0002"})
    head, payload, sig = good.split(".")
    i = len(payload) // 2
    one_char = f"{head}.{payload[:i]}{'A' if payload[i] != 'A' else 'B'}{payload[i + 1:]}.{sig}"
    hs_head = b64(json.dumps({"alg": "HS256", "typ": codes.WALLET_TYP, "kid": key.kid}).encode())
    hs_body = b64(json.dumps(claims).encode())
    pem = key.public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    hs256 = f"{hs_head}.{hs_body}.{b64(hmac.new(pem, f'{hs_head}.{hs_body}'.encode(), hashlib.sha256).digest())}"
    with books.session(readonly=True) as s:
        access, _ = issue_access_token(books, load_actor(s, world.volunteer))
    return {
        "one character changed": (one_char, 422, "invalid_code"),
        "re-signed with another key": (signed(claims, Ed25519PrivateKey.generate()), 422, "invalid_code"),
        "alg none": (jwt.encode(claims, None, algorithm="none", headers={"kid": key.kid, "typ": codes.WALLET_TYP}),
                     422, "invalid_code"),
        "HS256 with the public key": (hs256, 422, "invalid_code"),
        "unknown kid": (signed(claims, Ed25519PrivateKey.generate(), "00112233aabbccdd"), 422, "unknown_key"),
        "wrong aud": (signed({**claims, "aud": "goldbean-api"}), 422, "invalid_code"),
        "wrong typ": (signed(claims, typ="gb-card+jwt"), 422, "unknown_key"),
        "plain JWT typ": (signed(claims, typ="JWT"), 422, "invalid_code"),
        "expired": (signed({**claims, "iat": now - 200, "exp": now - 140}), 422, "code_expired"),
        "not yet valid": (signed({**claims, "iat": now + 100, "exp": now + 160}), 422, "code_not_yet_valid"),
        "access token as payment code": (access, 422, "invalid_code"),
    }


def test_attacks_over_http_are_refused_with_their_code_and_change_nothing(client, books, world, clock):
    code = wallet_code(client, books, world)
    assert redeem(client, books, world, {"code": code, "amount": 10}).status_code == 201
    attacks = {"replayed code": (code, 409, "code_already_used"), **_attack_codes(books, world, clock)}
    before = balances(books, world)
    for name, (bad, status, error) in attacks.items():
        resp = redeem(client, books, world, {"code": bad, "amount": 10})
        assert (resp.status_code, resp.json["error"]) == (status, error), name
        assert set(resp.json) >= {"error", "message"}
        assert balances(books, world) == before, name
    assert verify_books(books).ok


def test_bean_card_issue_print_pin_lock_revoke(client, books, world):
    admin = auth(books, world.admin)
    resp = client.post("/api/v1/cards", json={"user_id": world.volunteer, "pin": "4321"}, headers=admin)
    assert resp.status_code == 201, resp.json
    card_id, code = resp.json["card"]["id"], resp.json["code"]
    assert decode_qr(base64.b64decode(resp.json["qr_png"])) == code
    page = client.get(f"/api/v1/cards/{card_id}/print", headers=admin)
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert b"4321" not in page.data and b"data:image/png;base64," in page.data
    png = client.get(f"/api/v1/cards/{card_id}/print?format=png", headers=admin)
    assert png.mimetype == "image/png" and decode_qr(png.data) == code
    for printed in (page, png):  # what spends beans with the PIN is not kept by caches nor framed
        assert printed.headers["Cache-Control"] == "no-store" and printed.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in printed.headers["Content-Security-Policy"]
    # a volunteer or cashier cannot print cards
    assert client.get(f"/api/v1/cards/{card_id}/print", headers=auth(books, world.cashier_a)).status_code == 403

    ok = redeem(client, books, world, {"code": code, "amount": 15, "pin": "4321"})
    assert ok.status_code == 201 and ok.json["method"] == "card"
    before = balances(books, world)
    missing = redeem(client, books, world, {"code": code, "amount": 15})
    assert (missing.status_code, missing.json["error"]) == (422, "pin_required")
    for _ in range(5):
        wrong = redeem(client, books, world, {"code": code, "amount": 15, "pin": "0000"})
        assert (wrong.status_code, wrong.json["error"]) == (403, "wrong_pin")
    sixth = redeem(client, books, world, {"code": code, "amount": 15, "pin": "4321"})
    assert (sixth.status_code, sixth.json["error"]) == (403, "card_locked")
    assert balances(books, world) == before
    # the officer of the volunteer's community unlocks it; an officer elsewhere could not
    assert client.post(f"/api/v1/cards/{card_id}/unlock", headers=auth(books, world.officer)).status_code == 200
    assert redeem(client, books, world, {"code": code, "amount": 5, "pin": "4321"}).status_code == 201
    assert client.post(f"/api/v1/cards/{card_id}/revoke", headers=admin).status_code == 200
    before = balances(books, world)
    revoked = redeem(client, books, world, {"code": code, "amount": 5, "pin": "4321"})
    assert (revoked.status_code, revoked.json["error"]) == (403, "card_revoked")
    assert balances(books, world) == before


def test_till_keys_issued_and_revoked_by_the_owner(client, books, world):
    owner = auth(books, world.owner_a)
    resp = client.post(f"/api/v1/merchants/{world.merchant_a}/tills", json={"name": "counter 1"}, headers=owner)
    assert resp.status_code == 201
    till_key, till_id = resp.json["key"], resp.json["id"]
    assert client.post(f"/api/v1/merchants/{world.merchant_b}/tills", json={"name": "x"},
                       headers=owner).status_code == 403
    assert client.post(f"/api/v1/merchants/{world.merchant_a}/tills", json={"name": "x"},
                       headers=auth(books, world.cashier_a)).status_code == 403
    till = {"Authorization": f"Bearer {till_key}"}
    r = redeem(client, books, world, {"code": wallet_code(client, books, world), "amount": 7}, headers=till)
    assert r.status_code == 201 and r.json["merchant"]["id"] == world.merchant_a
    assert client.get(f"/api/v1/redemptions/{r.json['redemption_id']}", headers=till).status_code == 200
    assert client.delete(f"/api/v1/merchants/{world.merchant_a}/tills/{till_id}", headers=owner).status_code == 200
    refused = redeem(client, books, world, {"code": wallet_code(client, books, world), "amount": 7}, headers=till)
    assert (refused.status_code, refused.json["error"]) == (401, "invalid_till_key")
    from sqlalchemy import select

    from ledger.schema import Till

    with books.session(readonly=True) as s:  # only a hash of the secret is stored
        stored = s.scalar(select(Till.secret_hash).where(Till.id == till_id))
    assert till_key.split("_", 2)[2] not in stored


def test_hold_above_threshold_confirmed_in_the_wallet(client, books, world):
    r = redeem(client, books, world, {"code": wallet_code(client, books, world), "amount": 250})
    assert r.status_code == 201 and r.json["status"] == "awaiting_confirmation"
    vol = auth(books, world.volunteer)
    wallet = client.get("/api/v1/wallet", headers=vol).json
    assert (wallet["available"], wallet["on_hold"]) == (750, 250)
    assert wallet["awaiting_confirmation"][0]["redemption_id"] == r.json["redemption_id"]
    other = client.post(f"/api/v1/wallet/holds/{r.json['redemption_id']}/confirm",
                        headers=auth(books, world.other_volunteer))
    assert other.status_code == 404
    ok = client.post(f"/api/v1/wallet/holds/{r.json['redemption_id']}/confirm", headers=vol)
    assert ok.status_code == 200 and ok.json["status"] == "completed"
    assert get_account(books, world.merchant_a_account).balance == 250


def test_refunds_and_other_merchants_cannot_touch_them(client, books, world):
    r = redeem(client, books, world, {"code": wallet_code(client, books, world), "amount": 80})
    rid = r.json["redemption_id"]
    cashier_b = auth(books, world.cashier_b)
    before = balances(books, world)
    # cashier of merchant B: cannot read, refund, list or settle merchant A's redemptions
    assert client.get(f"/api/v1/redemptions/{rid}", headers=cashier_b).status_code == 404
    stolen = client.post(f"/api/v1/redemptions/{rid}/refunds", json={},
                         headers={**cashier_b, "Idempotency-Key": "steal"})
    assert stolen.status_code == 404
    assert client.get(f"/api/v1/merchants/{world.merchant_a}/redemptions", headers=cashier_b).status_code == 403
    assert client.post("/api/v1/settlements", json={"period": "2026-10"}, headers=cashier_b).status_code == 403
    assert client.get(f"/api/v1/merchants/{world.merchant_a}/settlements", headers=cashier_b).status_code == 403
    assert client.get(f"/api/v1/merchants/{world.merchant_a}/settlements",
                      headers=auth(books, world.owner_b)).status_code == 403
    # the fund manager may read any merchant's redemptions, but not refund them
    fm = auth(books, world.fund_manager)
    assert client.get(f"/api/v1/redemptions/{rid}", headers=fm).json["amount"] == 80
    assert client.post(f"/api/v1/redemptions/{rid}/refunds", json={},
                       headers={**fm, "Idempotency-Key": "fm"}).status_code == 403
    assert balances(books, world) == before

    cashier_a = {**auth(books, world.cashier_a), "Idempotency-Key": "refund-1"}
    part = client.post(f"/api/v1/redemptions/{rid}/refunds", json={"amount": 30, "reason": "退货"}, headers=cashier_a)
    assert part.status_code == 201 and part.json["remaining"] == 50
    again = client.post(f"/api/v1/redemptions/{rid}/refunds", json={"amount": 30, "reason": "退货"}, headers=cashier_a)
    assert again.data == part.data
    too_much = client.post(f"/api/v1/redemptions/{rid}/refunds", json={"amount": 51},
                           headers={**cashier_a, "Idempotency-Key": "refund-2"})
    assert (too_much.status_code, too_much.json["error"]) == (409, "exceeds_refundable")
    listed = client.get(f"/api/v1/merchants/{world.merchant_a}/redemptions", headers=auth(books, world.cashier_a))
    assert listed.json[0]["refunded"] == 30
    assert get_account(books, world.wallet).balance == 950


def test_catalogue_crud_and_redeem_items(client, books, world):
    owner = auth(books, world.owner_a)
    base = f"/api/v1/merchants/{world.merchant_a}/items"
    tea = client.post(base, json={"name": "普洱茶", "price": 12}, headers=owner)
    assert tea.status_code == 201
    assert client.post(base, json={"name": "x", "price": "12"}, headers=owner).status_code == 422
    assert client.post(base, json={"name": "x", "price": 1}, headers=auth(books, world.cashier_a)).status_code == 403
    patched = client.patch(f"{base}/{tea.json['id']}", json={"price": 10}, headers=owner)
    assert patched.json["price"] == 10
    assert [i["name"] for i in client.get(base, headers=auth(books, world.volunteer)).json] == ["普洱茶"]
    r = redeem(client, books, world, {"code": wallet_code(client, books, world),
                                      "items": [{"item_id": tea.json["id"], "qty": 3}]})
    assert r.status_code == 201 and r.json["amount"] == 30 and r.json["items"][0]["name"] == "普洱茶"
    assert client.delete(f"{base}/{tea.json['id']}", headers=owner).json["active"] is False
    assert client.get(base, headers=auth(books, world.volunteer)).json == []


def test_settlement_api_and_cli_are_idempotent(client, books, world, clock, runner):
    redeem(client, books, world, {"code": wallet_code(client, books, world), "amount": 60})
    r = redeem(client, books, world, {"code": wallet_code(client, books, world), "amount": 40})
    client.post(f"/api/v1/redemptions/{r.json['redemption_id']}/refunds", json={"amount": 15},
                headers={**auth(books, world.cashier_a), "Idempotency-Key": "rf"})
    fm = auth(books, world.fund_manager)
    early = client.post("/api/v1/settlements", json={"period": "2026-11"}, headers=fm)
    assert (early.status_code, early.json["error"]) == (422, "period_not_ended")
    clock.now = dt.datetime(2026, 12, 2, 1, 0, tzinfo=dt.timezone.utc)
    fm = auth(books, world.fund_manager)
    first = client.post("/api/v1/settlements", json={"period": "2026-11"}, headers=fm)
    assert first.status_code == 200
    by_code = {s["merchant"]["code"]: s for s in first.json}
    assert (by_code["shop-a"]["redeemed"], by_code["shop-a"]["refunded"], by_code["shop-a"]["amount"]) == (100, 15, 85)
    assert by_code["shop-b"]["amount"] == 0
    assert get_account(books, world.merchant_a_account).balance == 0
    again = client.post("/api/v1/settlements", json={"period": "2026-11"}, headers=fm)
    assert again.json == first.json
    result = gb(runner, ["settlement", "run", "--period", "2026-11"])
    assert result.exit_code == 0, result.output
    assert "85 beans settled" in result.output
    with books.session(readonly=True) as s:
        from ledger.schema import Account

        payout = s.query(Account).filter_by(code="payout").one()
        assert payout.balance == 85
    owner = client.get(f"/api/v1/merchants/{world.merchant_a}/settlements", headers=auth(books, world.owner_a))
    assert owner.status_code == 200 and owner.json[0]["rmb_owed"] == 85
    assert verify_books(books).ok


def test_keys_cli_rotate_and_retire(client, books, world, runner):
    old_code = wallet_code(client, books, world)
    old_kid = jwt.get_unverified_header(old_code)["kid"]
    out = gb(runner, ["keys", "rotate", "--purpose", "wallet"])
    assert out.exit_code == 0, out.output
    new_code = wallet_code(client, books, world)
    assert jwt.get_unverified_header(new_code)["kid"] != old_kid
    jwks = client.get("/api/v1/keys").json["keys"]
    assert {k["kid"] for k in jwks if k["purpose"] == "wallet"} >= {old_kid}
    assert gb(runner, ["keys", "retire", "--purpose", "wallet", old_kid]).exit_code == 0
    assert old_kid not in {k["kid"] for k in client.get("/api/v1/keys").json["keys"]}
    refused = redeem(client, books, world, {"code": old_code, "amount": 1})
    assert (refused.status_code, refused.json["error"]) == (422, "unknown_key")
    assert redeem(client, books, world, {"code": new_code, "amount": 1}).status_code == 201
    listing = gb(runner, ["keys", "list", "--purpose", "wallet"])
    assert "retired" in listing.output and "signing" in listing.output


def test_docs_page_uses_local_assets(client):
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "/api/v1/docs/assets/swagger-ui-bundle.js" in text and "/api/v1/openapi.json" in text
    assert "http://" not in text and "https://" not in text
    js = client.get("/api/v1/docs/assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.data) > 100_000
    assert client.get("/api/v1/docs/assets/swagger-ui.css").status_code == 200
    spec = client.get("/api/v1/openapi.json").json
    assert "/api/v1/redemptions" in spec["paths"] and "tillKey" in spec["components"]["securitySchemes"]
