"""A tiny listener registry for what the journal did, so that metrics (or anything else) can watch it
without the ledger importing them.

``on_posted(fn)`` registers ``fn(transfers)``, called with the ``PostedTransfer`` list of every
successful ``post_batch`` made through ``journal.post_in``, ``journal.post`` or
``journal.expire_holds``, **after the transaction that posted them has committed** (a rolled-back transfer is never reported). With no
listener registered the hook costs one ``if`` per posting.

Listeners must be cheap and must not raise: an exception in one is swallowed (a broken metric must not
fail a payment), after the commit, so nothing about the books changes either way.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

Listener = Callable[[Sequence[Any]], None]

_listeners: list[Listener] = []
_INFO_KEY = "ledger.events.posted"
_hooked = False


def on_posted(fn: Listener) -> Listener:
    """Register ``fn``; usable as a decorator. Registering the same function twice is a no-op."""
    global _hooked
    if fn not in _listeners:
        _listeners.append(fn)
    if not _hooked:
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_rollback", _after_rollback)
        _hooked = True
    return fn


def remove_listener(fn: Listener) -> None:
    if fn in _listeners:
        _listeners.remove(fn)


def record_posted(session: Session, transfers: Sequence[Any]) -> None:
    """Called by the journal inside the transaction: remember what to announce once it commits."""
    if not _listeners or not transfers:
        return
    session.info.setdefault(_INFO_KEY, []).extend(transfers)


def _after_commit(session: Session) -> None:
    announce(session.info.pop(_INFO_KEY, None))


def announce(posted: Sequence[Any] | None) -> None:
    """Tell every listener about ``posted``: call only once the transaction that posted them committed
    (a use case on a plain connection calls this itself; sessions do it through ``record_posted``)."""
    if not posted or not _listeners:
        return
    for fn in list(_listeners):
        try:
            fn(posted)
        except Exception:  # a listener must never break the caller
            log.exception("ledger event listener %r failed", fn)


def _after_rollback(session: Session) -> None:
    session.info.pop(_INFO_KEY, None)
