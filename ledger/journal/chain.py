"""The hash chains that make the journal tamper-evident.

Each account's entries form a chain: an entry's hash covers the previous hash and everything the
entry and its transfer say about that account's money. Changing, deleting, inserting or reordering
one entry breaks the chain from that point, and the account row's ``chain_head`` and the signed
checkpoints pin where the chain must end.

The hash also covers who made the transfer, why, and what it is about (actor, reason, reference), so
the anomaly reports and statements that rely on them read what was written. Timestamps are not
hashed: they are set by the database server, whose precision differs between SQLite and PostgreSQL.
Order is what the chain pins.
"""

from __future__ import annotations

import hashlib
import json
import re


def genesis_hash(account_id: int, code: str, kind: str) -> str:
    return hashlib.sha256(f"goldbean-genesis-v1|{account_id}|{code}|{kind}".encode()).hexdigest()


# A transfer's two entries are hashed one after the other with the same transfer fields: remember the
# last JSON text. One tuple, replaced whole, so a thread reads either the old pair or the new one.
_last_about: tuple[tuple[object, ...], str] = ((), "")


def _about(transfer_key: str, actor: str, reason: str, reference: str | None) -> str:
    """The transfer's free text as JSON, so no choice of characters in it can shift the fields' boundaries."""
    global _last_about
    fields = (transfer_key, actor, reason, reference)
    last = _last_about
    if last[0] == fields:
        return last[1]
    text = _plain_json(fields)
    if text is None:
        text = json.dumps(list(fields), ensure_ascii=False, separators=(",", ":"))
    _last_about = (fields, text)
    return text


# what ``json.dumps(..., ensure_ascii=False)`` escapes in a string (and lone surrogates, left to it)
_NEEDS_ESCAPE = re.compile(r'[\x00-\x1f"\\\ud800-\udfff]')


def _plain_json(fields: tuple[str | None, ...]) -> str | None:
    """The JSON array ``json.dumps`` would write for strings (or None) that need no escaping, made by
    joining: the hashed text must stay byte for byte what it always was, and this is most of a batch's
    hashing time. ``None`` when any field needs ``json.dumps`` itself."""
    texts = [f for f in fields if f is not None]  # (lists, not generators: this runs once per transfer)
    try:
        joined = "".join(texts)
    except TypeError:  # a field that is not text: json.dumps writes it
        return None
    if _NEEDS_ESCAPE.search(joined):
        return None
    return "[" + ",".join(["null" if f is None else '"' + f + '"' for f in fields]) + "]"


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
    actor: str,
    reason: str,
    reference: str | None,
) -> str:
    about = _about(transfer_key, actor, reason, reference)
    payload = (
        f"{prev_hash}|{account_id}|{seq}|{kind}|{phase}|{side}|{counterparty_id}|"
        f"{amount}|{pending_delta}|{posted_delta}|{balance_after}|{about}"
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def checkpoint_digest(heads_json: str) -> str:
    return hashlib.sha256(f"goldbean-checkpoint-v1|{heads_json}".encode()).hexdigest()
