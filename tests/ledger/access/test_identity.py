"""Sign-in, scopes over the org tree, and API access tokens (forgeries refused)."""

from __future__ import annotations

import base64
import datetime as dt
import json

import jwt
import pytest

from ledger.access.identity import (
    authenticate,
    create_org_unit_in,
    create_user_in,
    grant_role_in,
    in_scope,
    load_actor,
    wallet_account_id,
)
from ledger.access.tokens import issue_access_token, verify_access_token
from ledger.errors import DomainError


@pytest.fixture
def tree(books):
    def work(s):
        d = create_org_unit_in(s, "pl", "盘龙区", "district")
        st = create_org_unit_in(s, "pl.gl", "鼓楼", "street", d.id)
        st2 = create_org_unit_in(s, "pl.td", "拓东", "street", d.id)
        c = create_org_unit_in(s, "pl.gl.js", "金沙", "community", st.id)
        c2 = create_org_unit_in(s, "pl.td.jx", "金星", "community", st2.id)
        b = create_org_unit_in(s, "pl.gl.js.g1.b1", "1栋", "building", c.id)
        officer = create_user_in(s, "officer", "pw-officer", "Officer Li", phone="13800000001")
        grant_role_in(s, officer.id, "officer", st.id)
        vol = create_user_in(s, "vol", "pw-vol", "Volunteer Wang")
        grant_role_in(s, vol.id, "volunteer", c.id)
        return {"district": d.id, "street": st.id, "street2": st2.id, "community": c.id, "community2": c2.id,
                "building": b.id, "officer": officer.id, "vol": vol.id}

    return books.run(work)


def test_sign_in_by_username_or_phone(books, tree):
    a = authenticate(books, "officer", "pw-officer")
    assert a.user_id == tree["officer"] and a.has_role("officer") and not a.has_role("admin")
    assert authenticate(books, "13800000001", "pw-officer").user_id == tree["officer"]
    for user, pw in (("officer", "wrong"), ("nobody", "pw-officer"), ("", "x")):
        with pytest.raises(DomainError) as info:
            authenticate(books, user, pw)
        assert info.value.code == "invalid_credentials"


def test_lockout_after_five_failures(books, tree, clock):
    for _ in range(5):
        with pytest.raises(DomainError):
            authenticate(books, "vol", "bad")
    with pytest.raises(DomainError) as info:
        authenticate(books, "vol", "pw-vol")
    assert info.value.code == "account_locked"
    clock.advance(16 * 60)
    assert authenticate(books, "vol", "pw-vol").user_id == tree["vol"]


def test_scope_follows_the_tree(books, tree):
    with books.session(readonly=True) as s:
        officer = load_actor(s, tree["officer"])
        assert in_scope(s, officer, "officer", tree["street"])
        assert in_scope(s, officer, "officer", tree["community"])
        assert in_scope(s, officer, "officer", tree["building"])
        assert not in_scope(s, officer, "officer", tree["community2"])
        assert not in_scope(s, officer, "officer", tree["district"])
        assert not in_scope(s, officer, "leader", tree["community"])
        assert wallet_account_id(s, tree["vol"]) > 0


def _claims(books, clock) -> dict:
    now = int(clock().timestamp())
    return {"iss": "goldbean", "aud": "goldbean-api", "sub": "1", "jti": "x", "iat": now, "exp": now + 60}


def test_token_round_trip_and_expiry(books, tree, clock):
    with books.session(readonly=True) as s:
        actor = load_actor(s, tree["vol"])
    token, ttl = issue_access_token(books, actor)
    assert ttl == 900
    assert verify_access_token(books, token) == tree["vol"]
    clock.advance(ttl + 60)
    with pytest.raises(DomainError) as info:
        verify_access_token(books, token)
    assert info.value.code == "token_expired"


def _forge_refused(books, token: str) -> None:
    with pytest.raises(DomainError) as info:
        verify_access_token(books, token)
    assert info.value.code == "invalid_token"


def test_forged_tokens_are_refused(books, tree, clock):
    key = books.keys.ensure("access")
    claims = _claims(books, clock)
    # wrong typ (e.g. a wallet code presented as an access token)
    _forge_refused(books, jwt.encode(claims, key.private, algorithm="EdDSA",
                                     headers={"kid": key.kid, "typ": "gb-wallet+jwt"}))
    # alg none
    head = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "gb-access+jwt", "kid": key.kid}).encode())
    body = base64.urlsafe_b64encode(json.dumps(claims).encode())
    _forge_refused(books, f"{head.decode().rstrip('=')}.{body.decode().rstrip('=')}.")
    # HMAC with the public key as secret
    _forge_refused(books, jwt.encode(claims, "secret", algorithm="HS256",
                                     headers={"kid": key.kid, "typ": "gb-access+jwt"}))
    # tampered payload
    with books.session(readonly=True) as s:
        good, _ = issue_access_token(books, load_actor(s, tree["vol"]))
    h, p, sig = good.split(".")
    payload = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    payload["sub"] = str(tree["officer"])
    p2 = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    _forge_refused(books, f"{h}.{p2}.{sig}")
    # another key (unknown kid), wrong audience, missing jti
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    _forge_refused(books, jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA",
                                     headers={"kid": key.kid, "typ": "gb-access+jwt"}))
    _forge_refused(books, jwt.encode({**claims, "aud": "other"}, key.private, algorithm="EdDSA",
                                     headers={"kid": key.kid, "typ": "gb-access+jwt"}))
    _forge_refused(books, jwt.encode({k: v for k, v in claims.items() if k != "jti"}, key.private,
                                     algorithm="EdDSA", headers={"kid": key.kid, "typ": "gb-access+jwt"}))
    _forge_refused(books, "not.a.token")
    # a retired key no longer verifies
    books.keys.retire("access", key.kid)
    _forge_refused(books, good)


def test_lifetime_longer_than_policy_refused(books, tree, clock):
    key = books.keys.ensure("access")
    claims = _claims(books, clock)
    claims["exp"] = claims["iat"] + int(dt.timedelta(days=30).total_seconds())
    _forge_refused(books, jwt.encode(claims, key.private, algorithm="EdDSA",
                                     headers={"kid": key.kid, "typ": "gb-access+jwt"}))
