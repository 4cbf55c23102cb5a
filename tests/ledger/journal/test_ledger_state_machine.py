"""The ledger against a plain in-memory model, driven by hypothesis through random histories.

Allocations, awards, redemptions, refunds, settlements, holds (post, partial post, void, expire),
reversals, linked batches with a failing member, freezes and retries with the same id. After every
step: debits equal credits; no forbidden negative balance; every account's totals equal the model's
and the sums of its entries; a refused operation changed nothing; a retry changed nothing;
``verify`` passes. Runs on SQLite always and on PostgreSQL when reachable.
"""

from __future__ import annotations

import datetime as dt
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import case, func, select

from ledger.errors import DomainError
from ledger.journal.accounts import expire_holds, make_checkpoint, open_account, post, set_account_status
from ledger.journal.posting import TransferRequest, hold, post_hold, reversal, transfer, void_hold
from ledger.journal.verify import verify_books
from ledger.schema import Account, Entry
from tests.conftest import FakeClock, make_books, truncate_all

ACCOUNTS = {
    "donations": "donations",
    "fund": "fund",
    "budget:a": "budget",
    "budget:b": "budget",
    "wallet:1": "wallet",
    "wallet:2": "wallet",
    "wallet:3": "wallet",
    "merchant:1": "merchant",
    "merchant:2": "merchant",
    "payout": "payout",
}
BUDGETS = ["budget:a", "budget:b"]
WALLETS = ["wallet:1", "wallet:2", "wallet:3"]
MERCHANTS = ["merchant:1", "merchant:2"]
amounts = st.integers(min_value=1, max_value=400)


def near(limit: int) -> st.SearchStrategy[int]:
    """Amounts at and around ``limit`` (where boundary bugs live), or anywhere."""
    edges = sorted({max(1, limit - 1), max(1, limit), limit + 1})
    return st.sampled_from(edges) | amounts


@dataclass
class ModelAccount:
    kind: str
    status: str = "open"
    dpe: int = 0  # debits pending
    dpo: int = 0
    cpe: int = 0
    cpo: int = 0

    @property
    def no_negative(self) -> bool:
        return self.kind != "donations"

    def available(self) -> int:
        return self.cpo - self.dpo - self.dpe


@dataclass
class ModelTransfer:
    request: TransferRequest
    kind: str
    phase: str
    debit: str
    credit: str
    amount: int
    expires_at: dt.datetime | None = None
    resolved: bool = False
    reversed: int = 0


@dataclass
class Model:
    accounts: dict[str, ModelAccount] = field(default_factory=dict)
    transfers: dict[str, ModelTransfer] = field(default_factory=dict)


class LedgerMachine(RuleBasedStateMachine):
    """Subclassed per database by ``make_machine``; ``reset_database`` gives each example empty books."""

    holds = Bundle("holds")
    reversible = Bundle("reversible")
    done = Bundle("done")

    def reset_database(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        url = self.reset_database()
        self.books = make_books(url, self.keys_dir, self.clock)
        self.model = Model()
        self.ids: dict[str, int] = {}
        self.n = 0

    def teardown(self) -> None:
        self.books.engine.dispose()

    # --- helpers -------------------------------------------------------------------------------------
    def key(self, prefix: str) -> str:
        self.n += 1
        return f"{prefix}-{self.n}"

    def snapshot(self) -> tuple:
        with self.books.session(readonly=True) as s:
            rows = s.execute(select(Account.code, Account.debits_pending, Account.debits_posted,
                                    Account.credits_pending, Account.credits_posted, Account.entry_count,
                                    Account.status).order_by(Account.id)).all()
            entries = s.scalar(select(func.count()).select_from(Entry))
        return tuple(tuple(r) for r in rows), entries

    def attempt(self, request: TransferRequest | list[TransferRequest], expected_ok: bool,
                expected_code: str | None = None) -> bool:
        before = self.snapshot()
        try:
            results = post(self.books, request)
        except DomainError as exc:
            assert not expected_ok, f"refused unexpectedly: {exc}"
            if expected_code:
                assert exc.code == expected_code, exc
            assert self.snapshot() == before, "a refused operation changed the books"
            return False
        assert expected_ok, f"accepted but the model refuses: {request}"
        assert not any(r.replayed for r in results)
        return True

    def status_ok(self, name: str, kind: str, phase: str) -> bool:
        status = self.model.accounts[name].status
        if phase in ("void", "expire"):
            return True
        if status == "closed":
            return False
        return status == "open" or kind in ("reverse", "adjust")

    def can_debit(self, name: str, amount: int) -> bool:
        acc = self.model.accounts[name]
        return not acc.no_negative or acc.available() >= amount

    def apply_single(self, t: ModelTransfer) -> None:
        d, c = self.model.accounts[t.debit], self.model.accounts[t.credit]
        if t.phase == "pending":
            d.dpe += t.amount
            c.cpe += t.amount
        else:
            d.dpo += t.amount
            c.cpo += t.amount
        self.model.transfers[t.request.transfer_key] = t

    def single_ok(self, kind: str, debit: str, credit: str, amount: int, phase: str = "single") -> bool:
        return (self.status_ok(debit, kind, phase) and self.status_ok(credit, kind, phase)
                and self.can_debit(debit, amount))

    def do_single(self, kind: str, debit: str, credit: str, amount: int) -> list[str]:
        key = self.key(kind)
        req = transfer(key, kind, self.ids[debit], self.ids[credit], amount, actor="sm")
        ok = self.single_ok(kind, debit, credit, amount)
        if self.attempt(req, ok):
            self.apply_single(ModelTransfer(req, kind, "single", debit, credit, amount))
            return [key]
        return []

    # --- rules ---------------------------------------------------------------------------------------
    @initialize()
    def open_books(self) -> None:
        for code, kind in ACCOUNTS.items():
            self.ids[code] = open_account(self.books, code, kind).id
            self.model.accounts[code] = ModelAccount(kind)

    @rule(target=reversible, amount=st.integers(1, 3000))
    def donate(self, amount: int):
        return multiple(*self.do_single("donate", "donations", "fund", amount))

    @rule(target=reversible, budget=st.sampled_from(BUDGETS), amount=st.integers(1, 1500))
    def allocate(self, budget: str, amount: int):
        return multiple(*self.do_single("allocate", "fund", budget, amount))

    @rule(target=reversible, budget=st.sampled_from(BUDGETS), wallet=st.sampled_from(WALLETS), amount=amounts)
    def award(self, budget: str, wallet: str, amount: int):
        return multiple(*self.do_single("award", budget, wallet, amount))

    @rule(target=reversible, wallet=st.sampled_from(WALLETS), merchant=st.sampled_from(MERCHANTS), data=st.data())
    def redeem(self, wallet: str, merchant: str, data: st.DataObject):
        amount = data.draw(near(self.model.accounts[wallet].available()), label="amount")
        return multiple(*self.do_single("redeem", wallet, merchant, amount))

    @rule(wallet=st.sampled_from(WALLETS), merchant=st.sampled_from(MERCHANTS), amount=amounts)
    def refund(self, wallet: str, merchant: str, amount: int) -> None:
        self.do_single("refund", merchant, wallet, amount)

    @rule(merchant=st.sampled_from(MERCHANTS), amount=amounts)
    def settle(self, merchant: str, amount: int) -> None:
        self.do_single("settle", merchant, "payout", amount)

    @rule(target=holds, wallet=st.sampled_from(WALLETS), merchant=st.sampled_from(MERCHANTS), amount=amounts,
          timeout=st.integers(1, 120))
    def create_hold(self, wallet: str, merchant: str, amount: int, timeout: int):
        key = self.key("hold")
        req = hold(key, "redeem", self.ids[wallet], self.ids[merchant], amount, timeout, actor="sm")
        ok = self.single_ok("redeem", wallet, merchant, amount, "pending")
        if self.attempt(req, ok):
            self.apply_single(ModelTransfer(req, "redeem", "pending", wallet, merchant, amount,
                                            expires_at=self.clock() + dt.timedelta(seconds=timeout)))
            return key
        return multiple()

    def hold_state(self, hold_key: str) -> tuple[ModelTransfer, str | None]:
        h = self.model.transfers[hold_key]
        if h.resolved:
            return h, "pending_transfer_already_resolved"
        if h.expires_at <= self.clock():
            return h, "pending_transfer_expired"
        return h, None

    @rule(target=reversible, hold_key=holds, data=st.data())
    def post_a_hold(self, hold_key: str, data: st.DataObject):
        h, problem = self.hold_state(hold_key)
        amount = data.draw(st.none() | near(h.amount), label="post amount")
        key = self.key("post")
        req = post_hold(key, hold_key, amount, actor="sm")
        effective = h.amount if amount is None else amount
        code = problem
        if code is None and effective > h.amount:
            code = "exceeds_pending_amount"
        if code is None and not (self.status_ok(h.debit, h.kind, "post") and self.status_ok(h.credit, h.kind, "post")):
            code = "wallet_frozen"
        if self.attempt(req, code is None, code if code != "wallet_frozen" else None):
            d, c = self.model.accounts[h.debit], self.model.accounts[h.credit]
            d.dpe -= h.amount
            c.cpe -= h.amount
            d.dpo += effective
            c.cpo += effective
            h.resolved = True
            self.model.transfers[key] = ModelTransfer(req, h.kind, "post", h.debit, h.credit, effective)
            return key
        return multiple()

    @rule(hold_key=holds)
    def void_a_hold(self, hold_key: str) -> None:
        h, problem = self.hold_state(hold_key)
        key = self.key("void")
        if self.attempt(void_hold(key, hold_key, actor="sm"), problem is None, problem):
            self.model.accounts[h.debit].dpe -= h.amount
            self.model.accounts[h.credit].cpe -= h.amount
            h.resolved = True

    @rule(data=st.data())
    def time_passes(self, data: st.DataObject) -> None:
        # often land exactly on a hold's deadline, where off-by-one mistakes live
        deadlines = sorted(int((h.expires_at - self.clock()).total_seconds()) for h in self.model.transfers.values()
                           if h.phase == "pending" and not h.resolved and h.expires_at > self.clock())
        exact = st.sampled_from(deadlines) if deadlines else st.nothing()
        seconds = data.draw(exact | st.integers(1, 90), label="seconds")
        self.clock.advance(seconds)

    @rule()
    def expiry_sweep(self) -> None:
        due = [h for h in self.model.transfers.values()
               if h.phase == "pending" and not h.resolved and h.expires_at <= self.clock()]
        assert expire_holds(self.books) == len(due)
        for h in due:
            self.model.accounts[h.debit].dpe -= h.amount
            self.model.accounts[h.credit].cpe -= h.amount
            h.resolved = True

    @rule(original_key=reversible, data=st.data())
    def reverse(self, original_key: str, data: st.DataObject) -> None:
        o = self.model.transfers[original_key]
        key = self.key("rev")
        remaining = o.amount - o.reversed
        amount = data.draw(near(max(remaining, 1)), label="amount")
        if amount > remaining:
            ok, code = False, "exceeds_reversible_amount"
        elif not (self.status_ok(o.credit, "reverse", "single") and self.status_ok(o.debit, "reverse", "single")):
            ok, code = False, None
        elif not self.can_debit(o.credit, amount):
            ok, code = False, "insufficient_funds"
        else:
            ok, code = True, None
        if self.attempt(reversal(key, original_key, amount, actor="sm", reason="correction"), ok, code):
            o.reversed += amount
            self.apply_single(ModelTransfer(reversal(key, original_key, amount), "reverse", "single", o.credit,
                                            o.debit, amount))

    @rule(awards=st.lists(st.tuples(st.sampled_from(BUDGETS), st.sampled_from(WALLETS), amounts), min_size=1,
                          max_size=4),
          spend=st.tuples(st.sampled_from(WALLETS), st.sampled_from(MERCHANTS), st.integers(1, 2000)))
    def linked_batch(self, awards: list[tuple[str, str, int]], spend: tuple[str, str, int]) -> None:
        """Awards then a redemption, all or nothing; often the redemption is too big and sinks all."""
        planned = [("award", b, w, a) for b, w, a in awards] + [("redeem", *spend)]
        shadow = {k: ModelAccount(**vars(v)) for k, v in self.model.accounts.items()}
        ok = True
        for kind, debit, credit, amount in planned:
            d, c = shadow[debit], shadow[credit]
            if not (self.status_ok(debit, kind, "single") and self.status_ok(credit, kind, "single")) or (
                    d.no_negative and d.available() < amount):
                ok = False
                break
            d.dpo += amount
            c.cpo += amount
        reqs = [transfer(self.key("batch"), kind, self.ids[d], self.ids[c], a, actor="sm")
                for kind, d, c, a in planned]
        if self.attempt(reqs, ok, None if ok else "linked_transfer_failed"):
            for req, (kind, debit, credit, amount) in zip(reqs, planned):
                self.apply_single(ModelTransfer(req, kind, "single", debit, credit, amount))

    @rule(key=done)
    def retry_changes_nothing(self, key: str) -> None:
        t = self.model.transfers[key]
        before = self.snapshot()
        results = post(self.books, t.request)
        assert results[0].replayed and results[0].amount == t.amount
        assert self.snapshot() == before

    @rule(key=consumes(done))
    def same_id_other_fields_is_refused(self, key: str) -> None:
        t = self.model.transfers[key]
        other = TransferRequest(**{**vars(t.request), "reason": t.request.reason + " (edited)"})
        self.attempt(other, False, "exists_with_different_fields")

    @rule(target=done, key=reversible)
    def remember_for_retry(self, key: str) -> str:
        return key

    @rule(wallet=st.sampled_from(WALLETS), status=st.sampled_from(["frozen", "open"]))
    def freeze_or_thaw(self, wallet: str, status: str) -> None:
        set_account_status(self.books, self.ids[wallet], status)
        self.model.accounts[wallet].status = status

    @precondition(lambda self: self.n % 7 == 3)
    @rule()
    def checkpoint(self) -> None:
        make_checkpoint(self.books)

    # --- invariants ----------------------------------------------------------------------------------
    @invariant()
    def books_match_model_and_balance(self) -> None:
        if not self.ids:
            return
        with self.books.session(readonly=True) as s:
            rows = {r.code: r for r in s.execute(select(Account))
                    .scalars()}
            sums = {r.account_id: r for r in s.execute(
                select(Entry.account_id,
                       func.sum(case((Entry.side == "D", Entry.pending_delta), else_=0)).label("dpe"),
                       func.sum(case((Entry.side == "D", Entry.posted_delta), else_=0)).label("dpo"),
                       func.sum(case((Entry.side == "C", Entry.pending_delta), else_=0)).label("cpe"),
                       func.sum(case((Entry.side == "C", Entry.posted_delta), else_=0)).label("cpo"))
                .group_by(Entry.account_id))}
        for code, m in self.model.accounts.items():
            a = rows[code]
            totals = (a.debits_pending, a.debits_posted, a.credits_pending, a.credits_posted)
            assert totals == (m.dpe, m.dpo, m.cpe, m.cpo), code
            s_ = sums.get(a.id)
            assert totals == ((s_.dpe, s_.dpo, s_.cpe, s_.cpo) if s_ else (0, 0, 0, 0)), code
            if m.no_negative:
                assert a.debits_posted + a.debits_pending <= a.credits_posted, code
        assert sum(r.debits_posted for r in rows.values()) == sum(r.credits_posted for r in rows.values())
        assert sum(r.debits_pending for r in rows.values()) == sum(r.credits_pending for r in rows.values())
        # what was donated sits in the fund, the budgets, the wallets, the merchants, the payouts
        donated = -rows["donations"].credits_posted + rows["donations"].debits_posted
        held = sum(r.credits_posted - r.debits_posted for c, r in rows.items() if c != "donations")
        assert donated == held

    @invariant()
    def verify_passes(self) -> None:
        report = verify_books(self.books)
        assert report.ok, report.verdict()


def make_machine(reset, keys_dir: Path) -> type[LedgerMachine]:
    return type("LedgerMachineOn", (LedgerMachine,), {"reset_database": lambda self: reset(),
                                                         "keys_dir": keys_dir})


def test_ledger_state_machine_sqlite(tmp_path: Path, sqlite_template: Path) -> None:
    counter = iter(range(10**6))

    def reset() -> str:
        target = tmp_path / f"sm-{next(counter)}.db"
        shutil.copyfile(sqlite_template, target)
        return f"sqlite:///{target}"

    run_state_machine_as_test(
        make_machine(reset, tmp_path / "keys"),
        settings=settings(max_examples=40, stateful_step_count=30, deadline=None,
                          suppress_health_check=list(HealthCheck)),
    )


@pytest.mark.postgres
def test_ledger_state_machine_postgres(tmp_path: Path, pg_database: str) -> None:
    def reset() -> str:
        truncate_all(pg_database)
        return pg_database

    run_state_machine_as_test(
        make_machine(reset, tmp_path / "keys"),
        settings=settings(max_examples=15, stateful_step_count=25, deadline=None,
                          suppress_health_check=list(HealthCheck)),
    )
