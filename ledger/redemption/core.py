"""Redemption's settings and the district's day, read from the one typed ``books.settings`` and ``books.calendar``
(``ledger.infra.settings``).

The use cases live in modules by job: ``tills`` (till keys, who is at the till), ``catalogue``, ``cards`` (bean
cards and their PINs), ``redeeming`` (a code spent at a till), ``holds`` (the volunteer confirms or declines),
``receipts`` (reading redemptions), ``refunds``, ``wallet`` (the volunteer's own view); the idempotency store is
``ledger.infra.idempotency`` and who may do what is ``ledger.access.policy``.

Order of locks in every write of the room (PostgreSQL): the idempotency record, then the spent code, then the
card or redemption row, then the accounts in id order (``post_batch``). On SQLite ``BEGIN IMMEDIATE``
serializes writers anyway.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ledger.infra.books import Books


def setting(books: Books, name: str) -> Any:
    """A redemption limit or retention by name, from the typed ``books.settings`` (``ledger.infra.settings``)."""
    group = books.settings.redemption if hasattr(books.settings.redemption, name) else books.settings.retention
    return getattr(group, name)


def local_tz(books: Books) -> dt.timezone:
    return books.calendar.tz


def _day_bounds(books: Books, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The district's local day around ``now``, from the one Calendar."""
    return books.calendar.day_bounds(now)
