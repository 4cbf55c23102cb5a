"""Redemption's settings and the district's day (``books.settings`` overrides each default).

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

# --- settings (``books.settings`` overrides each) -----------------------------------------------------
DEFAULTS: dict[str, Any] = {
    "redemption_hold_threshold": 200,  # above this many beans a redemption waits for the volunteer
    "redemption_hold_timeout_s": 600,  # unconfirmed holds void themselves after this
    "volunteer_daily_limit": 1000,  # beans one wallet may redeem per local day (None: no limit)
    "merchant_daily_limit": None,  # default for merchants without their own daily_limit_beans
    "refund_window_days": 14,
    "max_pin_tries": 5,
    "utc_offset_hours": 8,  # Kunming: days and settlement periods are local (UTC+8, no DST)
    "idempotency_retention_days": 30,  # a retry with the same Idempotency-Key gets the stored answer this long
    "spent_code_retention_s": 86_400,  # spent wallet codes are forgotten after this (ledger.housekeeping)
}


def setting(books: Books, name: str) -> Any:
    return books.settings.get(name, DEFAULTS[name])


def local_tz(books: Books) -> dt.timezone:
    return dt.timezone(dt.timedelta(hours=int(setting(books, "utc_offset_hours"))))


def _day_bounds(books: Books, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    local = now.astimezone(local_tz(books))
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return start.astimezone(dt.timezone.utc), (start + dt.timedelta(days=1)).astimezone(dt.timezone.utc)
