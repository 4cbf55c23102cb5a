"""The hash chains that make the journal tamper-evident.

Each account's entries form a chain: an entry's hash covers the previous hash and everything the
entry and its transfer say about that account's money. Changing, deleting, inserting or reordering
one entry breaks the chain from that point, and the account row's ``chain_head`` and the signed
checkpoints pin where the chain must end.

Timestamps are not hashed: they are set by the database server, whose precision differs between
SQLite and PostgreSQL. Order is what the chain pins.
"""

from __future__ import annotations

import hashlib


def genesis_hash(account_id: int, code: str, kind: str) -> str:
    return hashlib.sha256(f"goldbean-genesis-v1|{account_id}|{code}|{kind}".encode()).hexdigest()


def entry_hash(
    prev_hash: str,
    *,
    account_id: int,
    seq: int,
    transfer_key: str,
    kind: str,
    phase: str,
    side: str,
    counterparty_id: int,
    amount: int,
    pending_delta: int,
    posted_delta: int,
    balance_after: int,
) -> str:
    payload = (
        f"{prev_hash}|{account_id}|{seq}|{transfer_key}|{kind}|{phase}|{side}|{counterparty_id}|"
        f"{amount}|{pending_delta}|{posted_delta}|{balance_after}"
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def checkpoint_digest(heads_json: str) -> str:
    return hashlib.sha256(f"goldbean-checkpoint-v1|{heads_json}".encode()).hexdigest()
