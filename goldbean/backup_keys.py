"""The signing keys inside a backup (issue 14): what a restore on a new machine needs to verify the
checkpoints and to keep signing.

``keys.json`` in a backup holds:

- ``public``: every key of every purpose as a JWK (with ``retired`` and ``created_ns``), always, in
  clear: what signed the backup's checkpoints, for anyone checking it. A restore never verifies with
  these alone (whoever edits a backup could replace them); it trusts the machine's own keys and the
  private keys from the authenticated, passphrase-protected part;
- ``private``: only when the operator gives a passphrase: the PKCS#8 keys as JSON, encrypted with
  AES-256-GCM under a key derived from the passphrase by scrypt (n=2**15, r=8, p=1, random 16-byte salt,
  random 12-byte nonce). The public part is the AEAD's associated data, so neither can be changed
  without the restore noticing. Without a passphrase the private keys are never written.

The passphrase comes from ``--passphrase-file`` or ``GOLDBEAN_BACKUP_PASSPHRASE``.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from ledger.infra.keys import PURPOSES, KeyStore, key_id_of, public_jwk

PASSPHRASE_ENV = "GOLDBEAN_BACKUP_PASSPHRASE"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
FORMAT = "goldbean-backup-keys/1"
MIN_PASSPHRASE = 12


class KeysError(Exception):
    """The keys in a backup cannot be written, read or installed; the message says why."""


def read_passphrase(passphrase_file: str | os.PathLike[str] | None) -> bytes | None:
    """The operator's passphrase: the file's first line, else the environment variable, else None."""
    if passphrase_file is not None:
        try:
            text = Path(passphrase_file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise KeysError(f"cannot read the passphrase file {passphrase_file}: {exc.strerror}") from None
        value = text[0] if text else ""
    else:
        value = os.environ.get(PASSPHRASE_ENV, "")
        if not value:
            return None
    if len(value) < MIN_PASSPHRASE:
        raise KeysError(f"the backup passphrase must have at least {MIN_PASSPHRASE} characters")
    return value.encode("utf-8")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _kdf(passphrase: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=r, p=p).derive(passphrase)


def _public_part(store: KeyStore) -> dict:
    return {purpose: [dict(public_jwk(k.kid, k.public), retired=k.retired, created_ns=k.created_ns)
                      for k in store.keys(purpose)] for purpose in PURPOSES}


def bundle(keys_dir: str | os.PathLike[str], passphrase: bytes | None) -> bytes:
    """``keys.json`` for a backup of an instance whose keys are in ``keys_dir``."""
    store = KeyStore(keys_dir)
    public = _public_part(store)
    doc: dict = {"format": FORMAT, "public": public, "private": None}
    if passphrase is not None:
        pems = {purpose: {k.kid: k.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()).decode("ascii")
                          for k in store.keys(purpose)} for purpose in PURPOSES}
        salt, nonce = os.urandom(16), os.urandom(12)
        aad = json.dumps(public, sort_keys=True).encode()
        sealed = AESGCM(_kdf(passphrase, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)).encrypt(
            nonce, json.dumps(pems).encode(), aad)
        doc["private"] = {"kdf": "scrypt", "n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P, "salt": _b64(salt),
                          "cipher": "AES-256-GCM", "nonce": _b64(nonce), "ciphertext": _b64(sealed)}
    return json.dumps(doc, indent=1).encode()


@dataclass
class BackupKey:
    purpose: str
    kid: str
    pem: bytes
    retired: bool
    created_ns: int


def unseal(raw: bytes | None, passphrase: bytes | None) -> tuple[bool, list[BackupKey]]:
    """(whether the backup carries private keys, the private keys if the passphrase opened them)."""
    if raw is None:
        return False, []
    try:
        doc = json.loads(raw)
        public, sealed = doc["public"], doc["private"]
    except (ValueError, KeyError, TypeError):
        raise KeysError("the backup's keys.json is damaged") from None
    if not sealed:
        return False, []
    if passphrase is None:
        return True, []
    try:
        key = _kdf(passphrase, base64.b64decode(sealed["salt"]), int(sealed["n"]), int(sealed["r"]), int(sealed["p"]))
        plain = AESGCM(key).decrypt(base64.b64decode(sealed["nonce"]), base64.b64decode(sealed["ciphertext"]),
                                    json.dumps(public, sort_keys=True).encode())
    except InvalidTag:
        raise KeysError("wrong backup passphrase (or the backup's keys were altered)") from None
    except (ValueError, KeyError, TypeError):
        raise KeysError("the backup's encrypted keys are damaged") from None
    return True, _keys_of(json.loads(plain), public)


def _keys_of(pems: dict, public: dict) -> list[BackupKey]:
    meta = {(purpose, jwk["kid"]): jwk for purpose, jwks in public.items() for jwk in jwks}
    out = []
    for purpose, by_kid in pems.items():
        for kid, pem in by_kid.items():
            private = serialization.load_pem_private_key(pem.encode(), password=None)
            if not isinstance(private, Ed25519PrivateKey) or key_id_of(private.public_key()) != kid:
                raise KeysError(f"the backup's {purpose} key {kid} does not match its id")
            info = meta.get((purpose, kid), {})
            out.append(BackupKey(purpose, kid, pem.encode(), bool(info.get("retired")), int(info.get("created_ns", 0))))
    return out


def conflicts(keys_dir: Path, keys: list[BackupKey]) -> list[str]:
    """Keys in ``keys_dir`` with a backup key's file name but other content (never overwritten)."""
    out = []
    for key in keys:
        path = keys_dir / key.purpose / f"{key.kid}.pem"
        if path.exists() and path.read_bytes().strip() != key.pem.strip():
            out.append(str(path))
    return out


def merged_dir(keys_dir: Path, keys: list[BackupKey], scratch: Path) -> Path:
    """A copy of ``keys_dir`` with the backup's keys added, in ``scratch``: what the restored books are
    verified with before anything is installed."""
    merged = scratch / "keys"
    if keys_dir.is_dir():
        shutil.copytree(keys_dir, merged)
    else:
        merged.mkdir()
    install(merged, keys)
    return merged


def install(keys_dir: Path, keys: list[BackupKey]) -> list[str]:
    """Add the backup's keys that ``keys_dir`` lacks (each with its original age, so the newest key still
    signs); returns what was added. Call :func:`conflicts` first."""
    added = []
    for key in keys:
        folder = keys_dir / key.purpose
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        path = folder / f"{key.kid}.pem"
        if path.exists():
            continue  # the instance's own view of this key (retired or not) stands
        if key.retired:
            (folder / f"{key.kid}.retired").touch()
        tmp = folder / f".{key.kid}.pem.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key.pem)
            fh.flush()
            os.fsync(fh.fileno())
        if key.created_ns:
            os.utime(tmp, ns=(key.created_ns, key.created_ns))
        os.replace(tmp, path)
        added.append(f"{key.purpose}/{key.kid}")
    return added
