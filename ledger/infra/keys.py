"""Ed25519 signing keys, by purpose, kept as files under ``instance/keys/`` (never in the database).

Each purpose (``ledger`` checkpoints, ``access`` API tokens, ``wallet`` payment codes, ``card`` bean
cards) has its own keys, so that one kind of signature can never pass for another. A key's id
(``kid``) is derived from its public key. The newest key that is not retired signs; every key that is
not retired verifies, so codes signed just before a rotation stay valid until they expire.

Layout: ``<root>/<purpose>/<kid>.pem`` (PKCS#8 private key, mode 0600) and ``<kid>.retired`` as a
marker once the key must no longer verify.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PURPOSES = ("ledger", "access", "wallet", "card", "post_sign", "patrol_code", "certificate")
KEYS_TTL_S = 60  # another server's rotation or retirement is seen within this, whatever the folder's mtime
UNKNOWN_KID_RELOAD_S = 5  # an unknown kid re-reads the folder at most this often


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def public_raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(public_raw(public)).hexdigest()[:16]


def public_jwk(kid: str, public: Ed25519PublicKey, use: str = "sig") -> dict[str, str]:
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64url(public_raw(public)), "kid": kid, "use": use, "alg": "EdDSA"}


def public_from_jwk(jwk: dict[str, str]) -> Ed25519PublicKey:
    x = jwk["x"]
    return Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(x + "=" * (-len(x) % 4)))


@dataclass(frozen=True)
class SigningKey:
    purpose: str
    kid: str
    private: Ed25519PrivateKey
    created_ns: int
    retired: bool

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)


class KeyStore:
    """The instance's signing keys. Safe to share between threads; reloads after a rotation."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()
        # purpose -> (folder's mtime, when it was read, the keys)
        self._cache: dict[str, tuple[int, float, list[SigningKey]]] = {}
        self._unknown_kid_reload: dict[str, float] = {}  # purpose -> when an unknown kid last re-read it

    # --- loading -------------------------------------------------------------------------------
    def _dir(self, purpose: str) -> Path:
        if purpose not in PURPOSES:
            raise ValueError(f"unknown key purpose {purpose!r}")
        return self.root / purpose

    def _load(self, purpose: str) -> list[SigningKey]:
        keys: list[SigningKey] = []
        folder = self._dir(purpose)
        if folder.is_dir():
            for pem in folder.glob("*.pem"):
                private = serialization.load_pem_private_key(pem.read_bytes(), password=None)
                if not isinstance(private, Ed25519PrivateKey):
                    raise ValueError(f"{pem} is not an Ed25519 key")
                kid = key_id_of(private.public_key())
                retired = (folder / f"{kid}.retired").exists()
                keys.append(SigningKey(purpose, kid, private, pem.stat().st_mtime_ns, retired))
        keys.sort(key=lambda k: (k.created_ns, k.kid))
        return keys

    def _folder_version(self, purpose: str) -> int:
        try:
            return os.stat(self._dir(purpose)).st_mtime_ns
        except FileNotFoundError:
            return -1

    def keys(self, purpose: str) -> list[SigningKey]:
        """The purpose's keys, oldest first. Making, rotating or retiring a key adds a file to the purpose's
        folder, which changes the folder's mtime: one ``stat`` per look lets every worker sharing the folder
        see it at its next look. As a backstop for what the mtime cannot show (its granularity, a folder
        synced from another server), the folder is also re-read when its reading is ``KEYS_TTL_S`` old."""
        version = self._folder_version(purpose)
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(purpose)
            if cached is None or cached[0] != version or now - cached[1] > KEYS_TTL_S:
                cached = self._cache[purpose] = (version, now, self._load(purpose))
            return list(cached[2])

    def reload(self) -> None:
        with self._lock:
            self._cache.clear()

    # --- use -----------------------------------------------------------------------------------
    def active(self, purpose: str) -> SigningKey | None:
        live = [k for k in self.keys(purpose) if not k.retired]
        return live[-1] if live else None

    def ensure(self, purpose: str) -> SigningKey:
        """The active key for ``purpose``, generating the first one on first run."""
        key = self.active(purpose)
        return key if key is not None else self.rotate(purpose)

    def verifying_key(self, purpose: str, kid: str) -> Ed25519PublicKey | None:
        """The public key with this id, if it exists and is not retired. An unknown kid re-reads the folder
        (a key another server just made), at most every ``UNKNOWN_KID_RELOAD_S`` per purpose so that
        forged kids cannot keep the disk busy."""
        found = self._live_key(purpose, kid)
        if found is None:
            now = time.monotonic()
            with self._lock:
                if now - self._unknown_kid_reload.get(purpose, float("-inf")) <= UNKNOWN_KID_RELOAD_S:
                    return None
                self._unknown_kid_reload[purpose] = now
                self._cache.pop(purpose, None)
            found = self._live_key(purpose, kid)
        return found

    def _live_key(self, purpose: str, kid: str) -> Ed25519PublicKey | None:
        for key in self.keys(purpose):
            if key.kid == kid and not key.retired:
                return key.public
        return None

    def any_public(self, purpose: str, kid: str) -> Ed25519PublicKey | None:
        """The public key with this id, retired or not (old checkpoints stay verifiable)."""
        for key in self.keys(purpose):
            if key.kid == kid:
                return key.public
        return None

    def jwks(self, purpose: str) -> dict[str, list[dict[str, str]]]:
        return {"keys": [public_jwk(k.kid, k.public) for k in self.keys(purpose) if not k.retired]}

    def public_keys(self, purpose: str) -> dict[str, Ed25519PublicKey]:
        return {k.kid: k.public for k in self.keys(purpose)}

    # --- administration -------------------------------------------------------------------------
    def rotate(self, purpose: str) -> SigningKey:
        folder = self._dir(purpose)
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        private = Ed25519PrivateKey.generate()
        kid = key_id_of(private.public_key())
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        path = folder / f"{kid}.pem"
        tmp = folder / f".{kid}.pem.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        self.reload()
        key = next(k for k in self.keys(purpose) if k.kid == kid)
        return key

    def retire(self, purpose: str, kid: str) -> None:
        folder = self._dir(purpose)
        if not (folder / f"{kid}.pem").exists():
            raise KeyError(kid)
        (folder / f"{kid}.retired").touch()
        self.reload()


_COMPACT_JWS = re.compile(r"([A-Za-z0-9_-]+)\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def unverified_header(compact: str) -> dict[str, Any] | None:
    """The JOSE header of a compact JWS, read without trusting it (it only names the key and the type to
    verify against), or None when it is not one. One regular expression and one JSON parse: PyJWT's own
    reading checks the alphabet a character at a time, and every request with a token or a code needs it
    before the real verification, which PyJWT then does."""
    match = _COMPACT_JWS.fullmatch(compact)
    if match is None:
        return None
    segment = match.group(1)
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except ValueError:  # bad base64, bad UTF-8 or bad JSON
        return None
    return header if isinstance(header, dict) else None


def verify_signature(public: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        public.verify(signature, data)
        return True
    except InvalidSignature:
        return False


class InvalidJws(Exception):
    """A compact JWS that is malformed, signed by another key, or whose claims are not what was asked."""


_COMPACT_PARTS = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)")


def _segment(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def verify_eddsa_jws(compact: str, public: Ed25519PublicKey, *, audience: str, issuer: str,
                     require: tuple[str, ...]) -> dict[str, Any]:
    """The claims of a compact JWT signed with EdDSA by ``public``, checked as PyJWT's ``decode`` checks them
    with ``algorithms=["EdDSA"]``, ``audience``, ``issuer`` and ``options={"require": require}`` and no time
    checks (the callers judge times by the books' clock), or ``InvalidJws``.

    One regular expression, three base64 decodings, one signature check and one JSON parse: PyJWT's generic
    path (options merging, a Python loop over every character of every segment, algorithm objects) cost
    more than the signature itself on every till request and API call. Stricter than PyJWT in one way: a
    ``crit`` or ``b64`` header is refused (no code or token of ours carries one)."""
    match = _COMPACT_PARTS.fullmatch(compact) if isinstance(compact, str) else None
    if match is None:
        raise InvalidJws("not a compact JWS")
    head, body, sig = match.groups()
    try:
        header = json.loads(_segment(head))
        signature = _segment(sig)
        payload = _segment(body)
    except ValueError:  # bad base64, bad UTF-8 or bad JSON
        raise InvalidJws("undecodable segment") from None
    if not isinstance(header, dict) or header.get("alg") != "EdDSA" or "crit" in header or "b64" in header:
        raise InvalidJws("header")
    try:
        public.verify(signature, f"{head}.{body}".encode("ascii"))
    except InvalidSignature:
        raise InvalidJws("signature") from None
    try:
        claims = json.loads(payload)
    except ValueError:
        raise InvalidJws("payload") from None
    if not isinstance(claims, dict):
        raise InvalidJws("payload is not an object")
    for name in require:
        if claims.get(name) is None:
            raise InvalidJws(f"missing {name}")
    if claims.get("iss") != issuer:
        raise InvalidJws("issuer")
    aud = claims.get("aud")
    auds = [aud] if isinstance(aud, str) else aud
    if not isinstance(auds, list) or not all(isinstance(a, str) for a in auds) or audience not in auds:
        raise InvalidJws("audience")
    for name in ("sub", "jti"):
        if name in claims and not isinstance(claims[name], str):
            raise InvalidJws(f"{name} is not a string")
    return claims
