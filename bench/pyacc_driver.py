"""pyacc-sqlite, the python-accounting side. Runs inside its throwaway virtualenv (python-accounting and
SQLAlchemy), never imported by Gold Bean itself; ``bench/peers.py`` creates that virtualenv and runs:

    python pyacc_driver.py DBFILE ACCOUNTS SEED_TRANSFERS

It opens ACCOUNTS bank accounts of one entity in a SQLite file (WAL, synchronous=FULL, as the ledger's),
funds each from an equity account and posts SEED_TRANSFERS random transfers between them, all through
python-accounting's own posting (``JournalEntry`` with one ``LineItem``, ``post``), then prints
``{"ready": ...}`` and answers rounds on its standard input (``bench.peers``): ``round START DURATION``
runs one writer from START (epoch seconds) for DURATION seconds doing a transfer with a balance check
first, python-accounting's documented way (``closing_balance`` of the source, then a posted journal
entry), each in its own session and commit, and prints {"rate", "refused", "failed"}.
"""

from __future__ import annotations

import json
import random
import sys
import time
from datetime import datetime
from decimal import Decimal


def main() -> None:
    db_file, n_accounts, n_seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    from python_accounting.config import config
    from python_accounting.database.session import get_session
    from python_accounting.models import Account, Base, Currency, Entity, LineItem
    from python_accounting.transactions import JournalEntry
    from sqlalchemy import create_engine, event

    config.configure_database(url=f"sqlite:///{db_file}", echo=False)
    engine = create_engine(f"sqlite:///{db_file}")

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record):  # the same durability as the ledger's SQLite
        cur = dbapi_connection.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.close()

    Base.metadata.create_all(engine)
    with get_session(engine) as session:
        entity = Entity(name="Gold Bean bench")
        session.add(entity)
        session.commit()
        currency = Currency(name="Beans", code="BNS", entity_id=entity.id)
        session.add(currency)
        session.commit()
        equity = Account(name="donations", account_type=Account.AccountType.EQUITY, currency_id=currency.id,
                         entity_id=entity.id)
        session.add(equity)
        wallets = [Account(name=f"wallet {i}", account_type=Account.AccountType.BANK, currency_id=currency.id,
                           entity_id=entity.id) for i in range(n_accounts)]
        session.add_all(wallets)
        session.commit()
        entity_id, equity_id = entity.id, equity.id
        ids = [w.id for w in wallets]

    def post(session, debit: int, credit: int, amount: int) -> None:
        """``amount`` from account ``credit``... as python-accounting writes it: the main account is debited
        (``credited=False``), the line item's account credited."""
        entry = JournalEntry(narration="bench", transaction_date=datetime.now(), account_id=debit,
                             entity_id=entity_id, credited=False)
        session.add(entry)
        session.flush()
        line = LineItem(narration="bench", account_id=credit, amount=Decimal(amount), entity_id=entity_id,
                        credited=True)
        session.add(line)
        session.flush()
        entry.line_items.add(line)
        session.add(entry)
        entry.post(session)

    def session_of_entity():  # every session of python-accounting works for one entity
        session = get_session(engine)
        session.entity = session.get(Entity, entity_id)
        return session

    rnd = random.Random(1)
    with session_of_entity() as session:
        for w in ids:
            post(session, w, equity_id, 1_000_000)
        session.commit()
        for k in range(max(0, n_seed - len(ids))):
            a, b = rnd.sample(ids, 2)
            post(session, b, a, rnd.randint(1, 10))
            if k % 500 == 499:
                session.commit()
        session.commit()
    print(json.dumps({"ready": True, "accounts": n_accounts, "transfers": max(n_seed, len(ids))}), flush=True)

    pairs = [rnd.sample(ids, 2) for _ in range(4096)]
    n = 0
    for line in sys.stdin:
        parts = line.split()
        if not parts or parts[0] != "round":
            break
        start_at, duration = float(parts[1]), float(parts[2])
        while time.time() < start_at:
            time.sleep(0.001)
        end = start_at + duration
        done = refused = failed = 0
        while time.time() < end:
            a, b = pairs[n % 4096]
            amount = 1 + n % 10
            n += 1
            try:
                with session_of_entity() as session:
                    src = session.get(Account, a)
                    if src.closing_balance(session) >= amount:
                        post(session, b, a, amount)
                        session.commit()
                        done += 1
                    else:
                        refused += 1
            except Exception:  # counted
                failed += 1
        print(json.dumps({"rate": done / duration, "refused": refused, "failed": failed}), flush=True)


if __name__ == "__main__":
    main()
