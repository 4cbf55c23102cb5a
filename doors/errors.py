"""The one mapping from a domain error's category to an HTTP status, for the API and the pages alike."""

from __future__ import annotations

from ledger import errors
from ledger.errors import DomainError

STATUS_BY_CATEGORY = {
    errors.INVALID: 422,
    errors.UNAUTHENTICATED: 401,
    errors.FORBIDDEN: 403,
    errors.NOT_FOUND: 404,
    errors.CONFLICT: 409,
    errors.TOO_MANY: 429,
    errors.UNAVAILABLE: 503,
}


def status_of(exc: DomainError) -> int:
    return STATUS_BY_CATEGORY[exc.category]
