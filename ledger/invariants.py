"""Invariants asserted in code (TigerBeetle's TIGER_STYLE).

``assert`` disappears under ``python -O``; these checks do not. A broken invariant is a bug in our
code, never a user's mistake, so it is not a ``DomainError``: it aborts the transaction and is logged
as a crash.
"""

from __future__ import annotations


class InvariantViolation(AssertionError):
    pass


def invariant(condition: object, message: str) -> None:
    if not condition:
        raise InvariantViolation(message)
