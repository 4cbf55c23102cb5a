"""Phones that sign offline codes, over HTTP on SQLite and PostgreSQL: registering a public key, reading and
revoking it (the volunteer, an officer over them; nobody else), offline codes redeemed at the till once each,
within the daily offline limits, refused at once after a revoke; the short number under a pay code redeems
too; a till payment reaches the volunteer's event stream."""

from __future__ import annotations

import base64
import json
import re
import secrets
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from doors import books_of
from ledger.journal.accounts import get_account
from ledger.redemption import codes
from tests.merchant_api.test_till_api import auth
from tests.redemption_world import build_world

_n = iter(range(10**6))


@pytest.fixture
def app(db_url: str, tmp_path: Path, clock):
    from goldbean.app import create_app

    application = create_app({"TESTING": True, "DATABASE_URL": db_url, "INSTANCE_PATH": str(tmp_path / "instance"),
                              "SECRET_KEY": "t", "SESSION_COOKIE_SECURE": False, "CLOCK": clock})
    yield application
    books_of(application).engine.dispose()


@pytest.fixture
def books(app):
    return books_of(app)


@pytest.fixture
def world(books):
    return build_world(books)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def ed25519_phone():
    key = Ed25519PrivateKey.generate()
    raw = key.public_key().public_bytes_raw()
    return key, {"kty": "OKP", "crv": "Ed25519", "x": b64(raw), "ext": True, "key_ops": ["verify"]}


def p256_phone():
    key = ec.generate_private_key(ec.SECP256R1())
    nums = key.public_key().public_numbers()
    return key, {"kty": "EC", "crv": "P-256", "x": b64(nums.x.to_bytes(32, "big")), "y": b64(nums.y.to_bytes(32, "big"))}


def offline_code(key, device: dict, *, iat: int | None = None, ttl: int = 60, sub: str | None = None,
                 alg: str | None = None) -> str:
    sign = device["signing"]
    now = sign["server_time"] if iat is None else iat
    claims = {"iss": sign["iss"], "aud": sign["aud"], "sub": sub or sign["sub"], "jti": secrets.token_urlsafe(16),
              "iat": now, "exp": now + ttl}
    return jwt.encode(claims, key, algorithm=alg or device["alg"], headers={"typ": sign["typ"], "kid": device["kid"]})


def redeem(client, headers, code: str, amount: int):
    return client.post("/api/v1/redemptions", json={"code": code, "amount": amount},
                       headers={**headers, "Idempotency-Key": f"dev-{next(_n)}"})


def test_a_registered_phone_signs_codes_the_till_takes_once_until_it_is_revoked(client, books, world) -> None:
    vol, till, officer = auth(books, world.volunteer), auth(books, world.cashier_a), auth(books, world.officer)
    key, jwk = ed25519_phone()
    resp = client.post("/api/v1/wallet/devices", json={"public_jwk": jwk, "name": "我的手机"}, headers=vol)
    assert resp.status_code == 201, resp.json
    device = resp.json
    assert device["alg"] == "EdDSA" and device["status"] == "active" and device["kid"].startswith("dev-")
    assert device["signing"]["typ"] == codes.OFFLINE_TYP and device["signing"]["sub"] == str(world.wallet)
    assert [d["id"] for d in client.get("/api/v1/wallet/devices", headers=vol).json] == [device["id"]]
    assert client.get(f"/api/v1/wallet/devices/{device['id']}", headers=officer).json["kid"] == device["kid"]
    other = auth(books, world.other_volunteer)
    assert client.get(f"/api/v1/wallet/devices/{device['id']}", headers=other).status_code == 404
    assert client.delete(f"/api/v1/wallet/devices/{device['id']}", headers=other).status_code == 404
    assert client.delete(f"/api/v1/wallet/devices/{device['id']}", headers=auth(books, world.cashier_a)).status_code == 403
    # the same key twice
    again = client.post("/api/v1/wallet/devices", json={"public_jwk": jwk}, headers=vol)
    assert again.status_code == 409 and again.json["error"] == "device_already_registered"

    start = get_account(books, world.wallet).balance
    code = offline_code(key, device)
    first = redeem(client, till, code, 12)
    assert first.status_code == 201, first.json
    assert first.json["method"] == "device_code" and first.json["amount"] == 12
    second = redeem(client, till, code, 12)
    assert second.status_code == 409 and second.json["error"] == "code_already_used"
    assert get_account(books, world.wallet).balance == start - 12
    # a code naming another wallet, a code from the future, a code too long lived, a forged signature
    assert redeem(client, till, offline_code(key, device, sub=str(world.other_wallet)), 1).json["error"] == "invalid_code"
    future = offline_code(key, device, iat=device["signing"]["server_time"] + 600)
    assert redeem(client, till, future, 1).json["error"] == "code_not_yet_valid"
    assert redeem(client, till, offline_code(key, device, ttl=3600), 1).json["error"] == "invalid_code"
    stranger, _ = ed25519_phone()
    assert redeem(client, till, offline_code(stranger, device), 1).json["error"] == "invalid_code"
    stale = offline_code(key, device, iat=device["signing"]["server_time"] - 600)
    assert redeem(client, till, stale, 1).json["error"] == "code_expired"

    # revoked by the officer: the phone's codes are refused at once; revoking again changes nothing
    pending = offline_code(key, device)
    gone = client.delete(f"/api/v1/wallet/devices/{device['id']}", headers=officer)
    assert gone.status_code == 200 and gone.json["status"] == "revoked"
    refused = redeem(client, till, pending, 5)
    assert refused.status_code == 403 and refused.json["error"] == "device_revoked"
    assert client.delete(f"/api/v1/wallet/devices/{device['id']}", headers=vol).json["status"] == "revoked"
    assert get_account(books, world.wallet).balance == start - 12


def test_offline_limits_per_day_and_the_p256_fallback(client, books, world) -> None:
    books.settings = books.settings.with_overrides({"offline_daily_codes": 2, "offline_daily_beans": 30,
                                                    "devices_per_user": 2})
    vol, till = auth(books, world.volunteer), auth(books, world.cashier_a)
    key, jwk = p256_phone()
    device = client.post("/api/v1/wallet/devices", json={"public_jwk": jwk}, headers=vol).json
    assert device["alg"] == "ES256"
    assert redeem(client, till, offline_code(key, device), 20).status_code == 201
    over = redeem(client, till, offline_code(key, device), 11)
    assert over.status_code == 409 and over.json["error"] == "offline_limit_exceeded"
    assert over.json["details"]["limit"] == "beans"
    assert redeem(client, till, offline_code(key, device), 10).status_code == 201
    third = redeem(client, till, offline_code(key, device), 1)
    assert third.json["error"] == "offline_limit_exceeded" and third.json["details"]["limit"] == "codes"
    # an online code is not limited by the offline limits
    online = client.post("/api/v1/wallet/codes", headers=vol).json
    assert redeem(client, till, online["code"], 5).status_code == 201
    # another phone shares the wallet's offline limits; a third phone is one too many
    key2, jwk2 = ed25519_phone()
    device2 = client.post("/api/v1/wallet/devices", json={"public_jwk": jwk2}, headers=vol).json
    assert redeem(client, till, offline_code(key2, device2), 1).json["error"] == "offline_limit_exceeded"
    _, jwk3 = ed25519_phone()
    too_many = client.post("/api/v1/wallet/devices", json={"public_jwk": jwk3}, headers=vol)
    assert too_many.status_code == 409 and too_many.json["error"] == "too_many_devices"


def test_bad_keys_are_refused_with_stable_codes(client, books, world) -> None:
    vol = auth(books, world.volunteer)
    _, good = ed25519_phone()
    cases = [
        {**good, "x": b64(b"\x01" * 31)},  # 31 bytes
        {"kty": "EC", "crv": "P-256", "x": b64(b"\x01" * 32), "y": b64(b"\x02" * 32)},  # not on the curve
        {"kty": "OKP", "crv": "P-256", "x": good["x"]},  # no such pair
    ]
    for jwk in cases:
        resp = client.post("/api/v1/wallet/devices", json={"public_jwk": jwk}, headers=vol)
        assert resp.status_code == 422 and resp.json["error"] in ("device_key_invalid", "validation_failed"), jwk
    private = client.post("/api/v1/wallet/devices", json={"public_jwk": {**good, "d": good["x"]}}, headers=vol)
    assert private.status_code == 422
    cashier = client.post("/api/v1/wallet/devices", json={"public_jwk": good}, headers=auth(books, world.cashier_a))
    assert cashier.status_code == 403
    assert client.get("/api/v1/wallet/devices", headers=vol).json == []


def test_the_short_number_redeems_once_and_the_payment_reaches_the_event_stream(client, books, world) -> None:
    vol, till = auth(books, world.volunteer), auth(books, world.cashier_a)
    stream = client.get("/api/v1/events", headers=vol)
    cursor = int(re.findall(r"^id: (\d+)$", stream.text, re.M)[-1])
    issued = client.post("/api/v1/wallet/codes", headers=vol).json
    number = issued["number"]
    assert re.fullmatch(r"[1-9]\d{15}", number)
    typed = " ".join(number[i:i + 4] for i in range(0, 16, 4))  # as the phone shows it
    first = redeem(client, till, typed, 7)
    assert first.status_code == 201 and first.json["method"] == "wallet_code"
    assert redeem(client, till, number, 7).json["error"] == "code_already_used"
    wrong = number[:-1] + str((int(number[-1]) + 1) % 10)
    assert redeem(client, till, wrong, 7).json["error"] == "invalid_code"
    events = client.get("/api/v1/events", headers={**vol, "Last-Event-ID": str(cursor)}).text
    payments = [json.loads(line[6:]) for line in events.splitlines() if line.startswith("data: ")]
    assert [(p["event"], p["amount"], p["source"]) for p in payments] == [("payment", 7, "till")]
    other = client.get("/api/v1/events", headers={**auth(books, world.other_volunteer), "Last-Event-ID": str(cursor)})
    assert "payment" not in other.text
