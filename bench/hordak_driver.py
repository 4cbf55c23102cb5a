"""hordak-pg, the django-hordak side. Runs inside the throwaway virtualenv (Django + django-hordak), never
imported by Gold Bean itself; ``bench/hordak_pg.py`` creates that virtualenv and calls this script:

    python hordak_driver.py DBNAME HOST PORT USER ACCOUNTS SEED_TRANSFERS WORKERS PROCS

Migrates hordak into the (empty) scratch database, opens ACCOUNTS asset accounts funded from an
equity account, seeds SEED_TRANSFERS random transfers between them (bulk, each a Transaction with two
Legs, checked by hordak's own database triggers at commit), prints ``{"ready": ...}`` and answers rounds
(``bench/peers.py``): ``round START DURATION`` runs WORKERS concurrent workers (threads over PROCS processes)
from START for DURATION seconds, each doing hordak's documented way of a transfer with a balance check first:
``with atomic(): if src.get_simple_balance() >= amount: src.transfer_to(dst, amount)``, and prints one
JSON line: {"rate": transfers per second, "refused": ..., "failed": ...}.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import random
import sys
import threading
import time


def setup(db: str, host: str, port: str, user: str) -> None:
    import django
    from django.conf import settings

    settings.configure(
        DATABASES={"default": {"ENGINE": "django.db.backends.postgresql", "NAME": db, "HOST": host, "PORT": port,
                               "USER": user, "PASSWORD": os.environ.get("PGPASSWORD", ""), "CONN_MAX_AGE": None}},
        INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "mptt", "djmoney", "hordak"],
        USE_TZ=True, DEFAULT_CURRENCY="EUR", HORDAK_CURRENCIES=["EUR"], CURRENCIES=["EUR"],
        DEFAULT_AUTO_FIELD="django.db.models.AutoField", LOGGING_CONFIG=None,
    )
    django.setup()


def seed(n_accounts: int, n_transfers: int) -> list[int]:
    from django.core.management import call_command
    from django.db import transaction as atomic_tx
    from djmoney.money import Money
    from hordak.models import Account, Leg, Transaction

    call_command("migrate", verbosity=0)
    with atomic_tx.atomic():
        capital = Account.objects.create(name="capital", code="1", type=Account.TYPES.equity, currencies=["EUR"])
        # root accounts in bulk (one by one, MPTT would renumber every other root each time)
        Account.objects.bulk_create([
            Account(name=f"wallet {i}", code=f"w{i}", type=Account.TYPES.asset, currencies=["EUR"],
                    tree_id=capital.tree_id + 1 + i, lft=1, rght=2, level=0) for i in range(n_accounts)])
    ids = list(Account.objects.filter(type=Account.TYPES.asset).order_by("id").values_list("id", flat=True))
    rnd = random.Random(1)
    pairs = [(capital.id, w, 1_000_000) for w in ids]
    pairs += [(*rnd.sample(ids, 2), rnd.randint(1, 10)) for _ in range(max(0, n_transfers - len(pairs)))]
    for start in range(0, len(pairs), 5000):
        chunk = pairs[start:start + 5000]
        with atomic_tx.atomic():
            txs = Transaction.objects.bulk_create([Transaction(description="seed") for _ in chunk])
            legs = []
            for tx, (src, dst, amount) in zip(txs, chunk):
                legs.append(Leg(transaction=tx, account_id=src, credit=Money(amount, "EUR")))
                legs.append(Leg(transaction=tx, account_id=dst, debit=Money(amount, "EUR")))
            Leg.objects.bulk_create(legs)
    return ids


def worker(ids: list[int], threads: int, start_at: float, duration: float, seed_: int, out: mp.Queue) -> None:
    from django import db as django_db
    from django.db import transaction as atomic_tx
    from djmoney.money import Money
    from hordak.models import Account

    django_db.connections.close_all()  # no connection inherited from the parent
    done = [0] * threads
    refused = [0] * threads
    failed = [0] * threads

    def loop(t: int) -> None:
        rnd = random.Random(seed_ * 1000 + t)
        pairs = [rnd.sample(ids, 2) for _ in range(4096)]
        accounts = {a.id: a for a in Account.objects.filter(id__in={i for p in pairs for i in p})}
        while time.time() < start_at:
            time.sleep(0.001)
        end = start_at + duration
        n = 0
        while True:
            a, b = pairs[n % 4096]
            amount = Money(1 + n % 10, "EUR")
            moved = False
            try:
                with atomic_tx.atomic():
                    src = accounts[a]
                    if src.get_simple_balance().monies()[0] >= amount:
                        src.transfer_to(accounts[b], amount, description="bench")
                        moved = True
                    else:
                        refused[t] += 1
            except Exception:  # counted
                failed[t] += 1
            if time.time() > end:
                break
            done[t] += moved
            n += 1
        django_db.connections.close_all()

    ths = [threading.Thread(target=loop, args=(t,)) for t in range(threads)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    out.put((sum(done), sum(refused), sum(failed)))


def main() -> None:
    db, host, port, user = sys.argv[1:5]
    n_accounts, n_transfers, workers, procs = (int(x) for x in sys.argv[5:9])
    setup(db, host, port, user)
    t0 = time.time()
    ids = seed(n_accounts, n_transfers)
    seed_s = time.time() - t0
    from django import db as django_db

    django_db.connections.close_all()
    print(json.dumps({"ready": True, "seed_s": round(seed_s, 1)}), flush=True)
    ctx = mp.get_context("fork")
    for line in sys.stdin:  # "round START DURATION": one measurement (bench/peers.py)
        parts = line.split()
        if not parts or parts[0] != "round":
            break
        start_at, duration = float(parts[1]), float(parts[2])
        q = ctx.Queue()
        per = [workers // procs + (1 if i < workers % procs else 0) for i in range(procs)]
        ps = [ctx.Process(target=worker, args=(ids, k, start_at, duration, int(start_at) + i, q))
              for i, k in enumerate(per) if k]
        for p in ps:
            p.start()
        res = [q.get(timeout=duration + 120) for _ in ps]
        for p in ps:
            p.join()
        done = sum(r[0] for r in res)
        print(json.dumps({"rate": done / duration, "transfers": done, "refused": sum(r[1] for r in res),
                          "failed": sum(r[2] for r in res)}), flush=True)


if __name__ == "__main__":
    main()
