"""``Books``: the ledger bound to one database, one key store and one clock.

Every use case takes the ``Books`` and the acting user; it opens exactly one transaction through
``Books.run`` (retried whole on serialization failures), so a view never commits anything itself.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from ledger.infra.announce import Announcement, Listener
from ledger.infra.db import run_in_transaction, transaction, utcnow
from ledger.infra.keys import KeyStore
from ledger.infra.settings import Calendar, Settings

T = TypeVar("T")


@dataclass
class Books:
    engine: Engine
    keys: KeyStore
    clock: Callable[[], dt.datetime] = utcnow
    settings: Settings = field(default_factory=Settings)  # typed and validated: see ledger.infra.settings
    # who hears announcements (ledger.infra.announce), connected by the composition root
    listeners: list[Listener] = field(default_factory=list)

    def run(self, work: Callable[[Session], T], *, readonly: bool = False) -> T:
        return run_in_transaction(self.engine, work, readonly=readonly)

    def run_core(self, work: Callable[[Connection], T], *, readonly: bool = False) -> T:
        """Like ``run`` with a plain ``Connection`` instead of an ORM session: for the posting hot path."""
        return run_in_transaction(self.engine, work, readonly=readonly, core=True)

    def session(self, *, readonly: bool = False):  # a context manager of Session
        """A single transaction without retries, for tests and one-off scripts."""
        return transaction(self.engine, readonly=readonly)

    def announce(self, session: Session, what: Announcement) -> None:
        """Tell the listeners, inside the use case's transaction (so it commits with the use case or not at all)."""
        for listener in self.listeners:
            listener(session, self, what)

    def now(self) -> dt.datetime:
        return self.clock()

    @property
    def calendar(self) -> Calendar:
        """The district's local days, months and weeks: the one place "today" is decided."""
        return self.settings.calendar

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name
