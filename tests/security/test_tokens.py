"""Token attacks: every forged, tampered, confused, expired or replayed token or code is refused with
its stable error code, and no balance changes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.access.tokens import ACCESS_TYP, AUDIENCE, ISSUER
from ledger.infra.keys import public_raw
from ledger.redemption import codes

from .conftest import CARD_PIN, all_balances, auth


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw_jwt(header: dict, claims: dict, sign=None) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = sign(signing_input.encode()) if sign else b""
    return f"{signing_input}.{b64(signature)}"


def access_claims(books, user_id: int, **over) -> dict:
    now = int(books.now().timestamp())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": str(user_id), "jti": uuid.uuid4().hex, "iat": now,
              "exp": now + 600}
    claims.update(over)
    return claims


def access_header(books, **over) -> dict:
    header = {"alg": "EdDSA", "typ": ACCESS_TYP, "kid": books.keys.ensure("access").kid}
    header.update(over)
    return header


def sign_real(books, purpose: str, header: dict, claims: dict) -> str:
    key = books.keys.ensure(purpose)
    extra = {k: v for k, v in header.items() if k != "alg"}
    return jwt.encode(claims, key.private, algorithm="EdDSA", headers=extra)


def tamper(token: str, **claims_over) -> str:
    head, payload, sig = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(claims_over)
    return f"{head}.{b64(json.dumps(claims).encode())}.{sig}"


def hs256_with_public(books, purpose: str, header: dict, claims: dict) -> str:
    """Algorithm confusion: an HMAC keyed with the server's public key (raw and PEM-ish forms)."""
    public = books.keys.ensure(purpose).public
    secret = public_raw(public)
    return raw_jwt({**header, "alg": "HS256"}, claims, lambda m: hmac.new(secret, m, hashlib.sha256).digest())


def forged(header: dict, claims: dict) -> str:
    """Signed by an attacker's own Ed25519 key under the server's kid."""
    return jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA",
                      headers={k: v for k, v in header.items() if k != "alg"})


# --- API access tokens -------------------------------------------------------------------------------

def access_attacks(books, world) -> dict[str, tuple[str, str]]:
    """name -> (token, expected error code)."""
    good = auth(books, world.volunteer)["Authorization"].split(" ", 1)[1]
    h, c = access_header(books), access_claims(books, world.volunteer)
    wallet_code = codes.issue_wallet_code(books, world.wallet).code
    return {
        "forged with another key": (forged(h, c), "invalid_token"),
        "tampered sub": (tamper(good, sub=str(world.admin)), "invalid_token"),
        "alg none": (raw_jwt({**h, "alg": "none"}, c), "invalid_token"),
        "alg none, no typ": (raw_jwt({"alg": "none"}, c), "invalid_token"),
        "HS256 keyed with the public key": (hs256_with_public(books, "access", h, c), "invalid_token"),
        "unknown kid": (sign_real(books, "access", {**h, "kid": "no-such-key"}, c), "invalid_token"),
        "wrong aud": (sign_real(books, "access", h, {**c, "aud": "goldbean-till"}), "invalid_token"),
        "wrong iss": (sign_real(books, "access", h, {**c, "iss": "evil"}), "invalid_token"),
        "wrong typ": (sign_real(books, "access", {**h, "typ": "JWT"}, c), "invalid_token"),
        "missing exp": (sign_real(books, "access", h, {k: v for k, v in c.items() if k != "exp"}), "invalid_token"),
        "too long a life": (sign_real(books, "access", h, {**c, "exp": c["iat"] + 86400}), "invalid_token"),
        "payment code as access token": (wallet_code, "invalid_token"),
        "garbage": ("not.a.token", "invalid_token"),
    }


def test_access_token_attacks_are_refused(client, books, world):
    before = all_balances(books)
    for name, (token, code) in access_attacks(books, world).items():
        for method, path in (("GET", "/api/v1/wallet"), ("POST", "/api/v1/wallet/codes")):
            r = client.open(path, method=method, headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 401, (name, r.json)
            assert r.json["error"] == code, (name, r.json)
    # an access token signed with the wallet-code key (right typ, other purpose's kid)
    h = access_header(books, kid=books.keys.ensure("wallet").kid)
    wrong_key = sign_real(books, "wallet", h, access_claims(books, world.volunteer))
    r = client.get("/api/v1/wallet", headers={"Authorization": f"Bearer {wrong_key}"})
    assert (r.status_code, r.json["error"]) == (401, "invalid_token")
    assert all_balances(books) == before


def test_expired_access_token(client, books, world, clock):
    headers = auth(books, world.volunteer)
    assert client.get("/api/v1/wallet", headers=headers).status_code == 200
    clock.advance(16 * 60)
    r = client.get("/api/v1/wallet", headers=headers)
    assert (r.status_code, r.json["error"]) == (401, "token_expired")


def test_token_of_a_disabled_user_is_refused(client, books, world):
    from ledger.schema import User

    headers = auth(books, world.volunteer)
    with books.session() as s:
        s.get(User, world.volunteer).active = False
    r = client.get("/api/v1/wallet", headers=headers)
    assert (r.status_code, r.json["error"]) == (401, "invalid_token")


# --- payment codes at the till -------------------------------------------------------------------------

def wallet_claims(books, world, **over) -> dict:
    now = int(books.now().timestamp())
    claims = {"iss": "goldbean", "aud": codes.AUDIENCE, "sub": str(world.wallet), "jti": uuid.uuid4().hex[:22],
              "iat": now, "exp": now + 60}
    claims.update(over)
    return claims


def code_attacks(books, world, card_code: str) -> dict[str, tuple[str, int, str]]:
    h = {"alg": "EdDSA", "typ": codes.WALLET_TYP, "kid": books.keys.ensure("wallet").kid}
    c = wallet_claims(books, world)
    good = codes.issue_wallet_code(books, world.wallet).code
    card_header = jwt.get_unverified_header(card_code)
    card_claims = jwt.decode(card_code, options={"verify_signature": False})
    return {
        "forged with another key": (forged(h, c), 422, "invalid_code"),
        "tampered wallet (sub)": (tamper(good, sub=str(world.other_wallet)), 422, "invalid_code"),
        "tampered amount of life": (tamper(good, exp=c["exp"] + 3600), 422, "invalid_code"),
        "alg none": (raw_jwt({**h, "alg": "none"}, c), 422, "invalid_code"),
        "HS256 keyed with the public key": (hs256_with_public(books, "wallet", h, c), 422, "invalid_code"),
        "unknown kid": (sign_real(books, "wallet", {**h, "kid": "no-such-key"}, c), 422, "unknown_key"),
        "wrong aud": (sign_real(books, "wallet", h, {**c, "aud": AUDIENCE}), 422, "invalid_code"),
        "wrong iss": (sign_real(books, "wallet", h, {**c, "iss": "evil"}), 422, "invalid_code"),
        "wrong typ": (sign_real(books, "wallet", {**h, "typ": "JWT"}, c), 422, "invalid_code"),
        "expired": (sign_real(books, "wallet", h, {**c, "iat": c["iat"] - 600, "exp": c["iat"] - 540}), 422,
                    "code_expired"),
        "not yet valid": (sign_real(books, "wallet", h, {**c, "iat": c["iat"] + 600, "exp": c["iat"] + 630}), 422,
                          "code_not_yet_valid"),
        "access token as payment code": (auth(books, world.volunteer)["Authorization"][7:], 422, "invalid_code"),
        # a card code passed off as a wallet code: the card key is not a wallet key
        "card code re-typed as wallet code": (
            sign_real(books, "card", {**card_header, "typ": codes.WALLET_TYP}, {**card_claims, "exp": c["exp"]}),
            422, "unknown_key"),
        "card code without its PIN": (card_code, 422, "pin_required"),
        "card code for another card id": (
            sign_real(books, "card", card_header, {**card_claims, "card": card_claims["card"] + 1}), 422,
            "invalid_code"),
    }


def test_payment_code_attacks_are_refused(client, books, world, card_code):
    before = all_balances(books)
    cashier = auth(books, world.cashier_a)
    for name, (code, status, error) in code_attacks(books, world, card_code).items():
        r = client.post("/api/v1/redemptions", json={"code": code, "amount": 5},
                        headers={**cashier, "Idempotency-Key": uuid.uuid4().hex})
        assert (r.status_code, r.json.get("error")) == (status, error), name
    assert all_balances(books) == before


def test_replayed_payment_code_is_refused(client, books, world):
    cashier = auth(books, world.cashier_a)
    code = codes.issue_wallet_code(books, world.wallet).code
    r = client.post("/api/v1/redemptions", json={"code": code, "amount": 5},
                    headers={**cashier, "Idempotency-Key": "first"})
    assert r.status_code == 201
    after_first = all_balances(books)
    # the same code under a new key (a replay) and at another merchant
    again = client.post("/api/v1/redemptions", json={"code": code, "amount": 5},
                        headers={**cashier, "Idempotency-Key": "second"})
    assert (again.status_code, again.json["error"]) == (409, "code_already_used")
    other = client.post("/api/v1/redemptions", json={"code": code, "amount": 5},
                        headers={**auth(books, world.cashier_b), "Idempotency-Key": "third"})
    assert (other.status_code, other.json["error"]) == (409, "code_already_used")
    # the same key with another body is not a retry
    changed = client.post("/api/v1/redemptions", json={"code": code, "amount": 6},
                          headers={**cashier, "Idempotency-Key": "first"})
    assert (changed.status_code, changed.json["error"]) == (422, "idempotency_conflict")
    assert all_balances(books) == after_first


def test_card_code_with_its_pin_still_works(client, books, world, card_code):
    """The attacks above are refused for what they are, not because cards or codes are broken."""
    r = client.post("/api/v1/redemptions", json={"code": card_code, "amount": 5, "pin": CARD_PIN},
                    headers={**auth(books, world.cashier_a), "Idempotency-Key": "card-ok"})
    assert r.status_code == 201, r.json


@pytest.mark.parametrize("header", ["Basic dXNlcjpwdw==", "Bearer", "Bearer  ", "Token abc"])
def test_malformed_authorization_header(client, header: str):
    r = client.get("/api/v1/wallet", headers={"Authorization": header})
    assert r.status_code == 401 and r.json["error"] in ("invalid_token", "not_authenticated")

