"""The key folder shared by several workers (processes with their own KeyStore): a key one of them makes,
rotates or retires is seen by the others at their next look, without waiting for a cache to age."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ledger.access.identity import Actor
from ledger.access.tokens import issue_access_token, verify_access_token
from ledger.errors import DomainError
from ledger.infra.keys import KeyStore, unverified_header
from ledger.redemption import codes


def _worker(books):
    return replace(books, keys=KeyStore(books.keys.root))


def test_an_access_token_signed_with_a_key_another_worker_made_is_accepted(books) -> None:
    reader = _worker(books)
    assert reader.keys.keys("access") == []  # it looked before any access key existed
    token, _ = issue_access_token(books, Actor(user_id=3, username="u", display_name="u", grants=()))
    assert verify_access_token(reader, token) == 3


def test_a_wallet_key_made_by_another_worker_after_this_one_verified_codes(books) -> None:
    reader, maker = _worker(books), _worker(books)
    first = codes.issue_wallet_code(books, 7).code
    assert codes.verify_code(reader, first).wallet_account_id == 7  # reader has looked at the folder now
    maker.keys.rotate("wallet")  # at once, well inside any reload throttle
    second = codes.issue_wallet_code(maker, 7).code
    assert unverified_header(second)["kid"] != unverified_header(first)["kid"]
    assert codes.verify_code(reader, second).wallet_account_id == 7


def test_a_key_retired_by_another_worker_is_refused_at_once(books) -> None:
    reader = _worker(books)
    code = codes.issue_wallet_code(books, 7).code
    assert codes.verify_code(reader, code).wallet_account_id == 7
    books.keys.retire("wallet", unverified_header(code)["kid"])
    with pytest.raises(DomainError) as info:
        codes.verify_code(reader, code)
    assert info.value.code == "unknown_key"
