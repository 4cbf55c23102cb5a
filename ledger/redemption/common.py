"""Small helpers every redemption module shares: how an instant is written in an answer, the merchant row."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from ledger import errors
from ledger.access.models import Merchant
from ledger.errors import DomainError
from ledger.infra.db import utc_from_db


def iso(value: dt.datetime | None) -> str | None:
    value = utc_from_db(value)
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z") if value else None


def merchant_row(s: Session, merchant_id: int, *, lock: bool = False) -> Merchant:
    merchant = s.get(Merchant, merchant_id, with_for_update=lock)
    if merchant is None:
        raise DomainError(errors.NOT_FOUND_ERR, merchant_id=merchant_id)
    return merchant
