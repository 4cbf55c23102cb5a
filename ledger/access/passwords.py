"""The one hasher for secrets people type: passwords and bean-card PINs.

argon2id, memory-hard (RFC 9106 "second recommended" shape; 64 MiB would be slow in tests: 19 MiB). A PIN
is short, so its hash alone does not protect it: the card locks after a few wrong tries and PIN attempts are
throttled per address (``ledger.access.security``).
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def hash_secret(secret: str) -> str:
    return HASHER.hash(secret)


def verify_secret(secret_hash: str, secret: str) -> bool:
    """Does ``secret`` match? A malformed hash is a mismatch, never an error."""
    try:
        return HASHER.verify(secret_hash, secret)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(secret_hash: str) -> bool:
    return HASHER.check_needs_rehash(secret_hash)
