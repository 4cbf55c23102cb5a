"""Fixtures for the security suite: the redemption test district, signed-in headers, and a snapshot of
every account's balance (an attack must change none)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from doors import books_of
from ledger import redemption
from ledger.access.identity import load_actor
from ledger.access.tokens import issue_access_token
from ledger.schema import Account
from tests.redemption_world import build_world

CARD_PIN = "2468"


@pytest.fixture
def books(app):
    return books_of(app)


@pytest.fixture
def world(books):
    return build_world(books)


@pytest.fixture
def card_code(books, world) -> str:
    with books.session(readonly=True) as s:
        officer = load_actor(s, world.officer)
    return redemption.issue_card(books, world.volunteer, officer.ref, CARD_PIN, by=officer)["code"]


def auth(books, user_id: int) -> dict[str, str]:
    with books.session(readonly=True) as s:
        actor = load_actor(s, user_id)
    token, _ = issue_access_token(books, actor)
    return {"Authorization": f"Bearer {token}"}


def all_balances(books) -> dict[int, tuple[int, int, int, int]]:
    with books.session(readonly=True) as s:
        return {a.id: (a.debits_posted, a.credits_posted, a.debits_pending, a.credits_pending)
                for a in s.scalars(select(Account).order_by(Account.id))}
