"""The auditor's reports: trial balance, fund reconciliation, merchant settlements, anomalies.

All of them read the journal only (plus, for names and back-filled claims, the people and earning
tables when present) and change nothing.

- The balance of an account at a moment ``t`` is the ``balance_after`` of its last entry created at
  or before ``t`` (by chain position), 0 if none. Balances are posted balances: holds are shown apart.
- Trial balance (试算平衡表): every account's balance at ``t``, grouped by account kind and by org unit
  (``owner_ref = "org:<id>"``, merchants by their org unit); the grand total is zero because every
  transfer debits one account and credits another by the same amount (the donations account is the
  outside world's side and is negative).
- Fund reconciliation: the beans donated (minus the donations balance) against where they are now:
  fund, budgets, wallets, merchants, payouts, expiry, adjustments; the difference must be zero.
- Settlement statements: per merchant account and period, opening balance, redeemed, refunded,
  settled (``settle`` transfers from the merchant to the payout account), other, closing balance.
- Anomalies: patterns worth an auditor's look, never proof of wrongdoing.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import defaultdict, deque
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import and_, func, inspect, select
from sqlalchemy.orm import Session, aliased

from ledger import errors
from ledger.audit.statements import as_utc, created_at_or_before, statement_in
from ledger.errors import DomainError
from ledger.infra.books import Books
from ledger.infra.db import ReadPoint, read_point_in
from ledger.infra.settings import Calendar
from ledger.journal.models import ACCOUNT_KINDS, Account, Entry, Transfer
from ledger.journal.rules import reconcile_balances


def _iso(moment: dt.datetime | None) -> str | None:
    return as_utc(moment).isoformat() if moment is not None else None


def _read(point: ReadPoint | None) -> dict[str, Any] | None:
    return point.to_dict() if point is not None else None


class ReportRows(list):
    """A report's rows and ``read``: where and as of when they were read (``ReadPoint``)."""

    read: ReadPoint | None = None


def read_report(books: Books, work: Any) -> Any:
    """Run ``work(session)`` through ``Books.read`` (a standby when configured) and set the result's ``read``
    to the read point taken first: everything committed up to its ``as_of`` is in the report."""

    def unit(session: Session) -> Any:
        point = read_point_in(session)
        result = work(session)
        if isinstance(result, list) and not isinstance(result, ReportRows):
            result = ReportRows(result)
        result.read = point
        return result

    return books.read(unit)


# --- balances at a moment -------------------------------------------------------------------------------

@dataclass(frozen=True)
class BalanceRow:
    account_id: int
    code: str
    kind: str
    name: str
    owner_ref: str | None
    balance: int
    entries: int  # how many of its entries the moment covers


def balances_at(session: Session, moment: dt.datetime | None) -> list[BalanceRow]:
    """Every account's balance at ``moment`` (``None``: as the books stand now), by account id."""
    if moment is None:
        rows = session.execute(select(Account.id, Account.code, Account.kind, Account.name, Account.owner_ref,
                                      Account.credits_posted - Account.debits_posted, Account.entry_count)
                               .order_by(Account.id)).all()
        return [BalanceRow(*r) for r in rows]
    last = (select(Entry.account_id, func.max(Entry.seq).label("seq"))
            .where(created_at_or_before(session, Entry.created_at, moment))
            .group_by(Entry.account_id).subquery())
    rows = session.execute(
        select(Account.id, Account.code, Account.kind, Account.name, Account.owner_ref,
               func.coalesce(Entry.balance_after, 0), func.coalesce(last.c.seq, 0))
        .outerjoin(last, last.c.account_id == Account.id)
        .outerjoin(Entry, and_(Entry.account_id == last.c.account_id, Entry.seq == last.c.seq))
        .order_by(Account.id)
    ).all()
    return [BalanceRow(*r) for r in rows]


def _org_names(session: Session) -> tuple[dict[int, str], dict[str, int]]:
    """Org unit names, and the org unit each owner (``merchant:<id>``, ``user:<id>``) is filed under."""
    try:
        from ledger.access.models import Merchant, OrgUnit, RoleGrant
    except ImportError:  # pragma: no cover
        return {}, {}
    tables = set(inspect(session.connection()).get_table_names())
    if "org_units" not in tables or "merchants" not in tables:
        return {}, {}
    units = {r.id: r for r in session.execute(select(OrgUnit.id, OrgUnit.name, OrgUnit.parent_id, OrgUnit.level))}
    names = {uid: r.name for uid, r in units.items()}
    owners = {f"merchant:{r.id}": r.org_unit_id for r in session.execute(select(Merchant.id, Merchant.org_unit_id))}
    # a wallet (``user:<id>``) is filed under its volunteer's community: the home unit of their first
    # volunteer (or leader) grant, or the community above it when that is a group or a building
    for r in session.execute(select(RoleGrant.user_id, RoleGrant.org_unit_id).where(
            RoleGrant.role.in_(("volunteer", "leader")), RoleGrant.org_unit_id.is_not(None))
            .order_by(RoleGrant.id)):
        owners.setdefault(f"user:{r.user_id}", _community_of(units, r.org_unit_id))
    return names, owners


def _community_of(units: dict[int, Any], unit_id: int) -> int:
    seen, at = set(), unit_id
    while at in units and at not in seen:
        if units[at].level == "community":
            return at
        seen.add(at)
        at = units[at].parent_id
    return unit_id


def _org_of(owner_ref: str | None, owners: dict[str, int]) -> int | None:
    """The org unit an account is filed under: ``org:<id>`` itself, a merchant's unit, a wallet's community."""
    if not owner_ref or ":" not in owner_ref:
        return None
    what, _, ident = owner_ref.partition(":")
    if not ident.isdigit():
        return None
    if what == "org":
        return int(ident)
    return owners.get(owner_ref)


@dataclass
class TrialBalance:
    at: dt.datetime | None
    accounts: list[BalanceRow]
    by_kind: dict[str, int]
    by_org: list[dict[str, Any]]
    total: int
    read: ReadPoint | None = None

    @property
    def balanced(self) -> bool:
        return self.total == 0

    def to_dict(self) -> dict[str, Any]:
        return {"at": _iso(self.at), "total": self.total, "balanced": self.balanced, "by_kind": self.by_kind,
                "by_org": self.by_org, "accounts": [asdict(a) for a in self.accounts], "read": _read(self.read)}


def trial_balance_in(session: Session, at: dt.datetime | None) -> TrialBalance:
    rows = balances_at(session, at)
    by_kind = dict.fromkeys(ACCOUNT_KINDS, 0)
    for r in rows:
        by_kind[r.kind] = by_kind.get(r.kind, 0) + r.balance
    names, owners = _org_names(session)
    orgs: dict[int | None, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        orgs[_org_of(r.owner_ref, owners)][r.kind] += r.balance
    by_org = [{"org_unit_id": org, "name": names.get(org, "") if org is not None else "",
               "by_kind": dict(kinds), "total": sum(kinds.values())}
              for org, kinds in sorted(orgs.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))]
    return TrialBalance(at, rows, by_kind, by_org, sum(r.balance for r in rows))


def trial_balance(books: Books, at: dt.datetime | None = None) -> TrialBalance:
    """Every account's balance at ``at`` (default: now), by kind and org unit; the total must be zero."""
    return read_report(books, lambda s: trial_balance_in(s, at))


# --- fund reconciliation ----------------------------------------------------------------------------------

@dataclass
class Reconciliation:
    at: dt.datetime | None
    donated: int
    held_by_kind: dict[str, int]
    accounted: int
    difference: int
    on_hold: int | None = None  # beans reserved by open holds (still counted in their accounts)
    read: ReadPoint | None = None

    @property
    def ok(self) -> bool:
        return self.difference == 0

    def to_dict(self) -> dict[str, Any]:
        return {"at": _iso(self.at), "donated": self.donated, "held_by_kind": self.held_by_kind,
                "accounted": self.accounted, "difference": self.difference, "ok": self.ok,
                "on_hold": self.on_hold, "read": _read(self.read)}

    def lines(self) -> list[str]:
        out = [f"donations received          {self.donated:>14}"]
        for kind, amount in self.held_by_kind.items():
            out.append(f"  {kind:<26}{amount:>14}")
        out.append(f"accounted for               {self.accounted:>14}")
        out.append(f"difference (must be 0)      {self.difference:>14}")
        if self.on_hold:
            out.append(f"(of which held by open holds {self.on_hold})")
        return out


def reconciliation_in(session: Session, at: dt.datetime | None) -> Reconciliation:
    by_kind: dict[str, int] = defaultdict(int)
    for r in balances_at(session, at):
        by_kind[r.kind] += r.balance
    donated, held, accounted, diff = reconcile_balances(by_kind)
    on_hold = None
    if at is None:
        on_hold = int(session.scalar(select(func.coalesce(func.sum(Account.debits_pending), 0))) or 0)
    return Reconciliation(at, donated, held, accounted, diff, on_hold)


def fund_reconciliation(books: Books, at: dt.datetime | None = None) -> Reconciliation:
    return read_report(books, lambda s: reconciliation_in(s, at))


# --- merchant settlement statements ---------------------------------------------------------------------

@dataclass
class SettlementStatement:
    account_id: int
    account_code: str
    name: str
    opening_balance: int
    redeemed: int
    refunded: int
    settled: int
    other: int
    closing_balance: int
    settlements: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def settlement_statements_in(session: Session, from_day: dt.date, to_day: dt.date,
                             merchant: str | None = None, *, calendar: Calendar) -> list[SettlementStatement]:
    if merchant is not None:
        from ledger.audit.statements import resolve_account

        acc = resolve_account(session, merchant)
        if acc.kind != "merchant":
            raise DomainError(errors.VALIDATION_FAILED, f"{acc.code} is not a merchant account")
        ids = [acc.id]
    else:
        ids = list(session.scalars(select(Account.id).where(Account.kind == "merchant").order_by(Account.id)))
    out = []
    for account_id in ids:
        st = statement_in(session, account_id, from_day, to_day, calendar=calendar)
        sums = defaultdict(int)
        settlements = []
        for ln in st.lines:
            if ln.change == 0:
                continue
            if ln.kind == "redeem" and ln.change > 0:
                sums["redeemed"] += ln.change
            elif ln.kind == "refund" and ln.change < 0:
                sums["refunded"] -= ln.change
            elif ln.kind == "settle" and ln.change < 0:
                sums["settled"] -= ln.change
                settlements.append({"transfer_key": ln.transfer_key, "amount": -ln.change,
                                    "payout_account": ln.counterparty_code, "reference": ln.reference,
                                    "at": ln.created_at.isoformat()})
            else:
                sums["other"] += ln.change
        out.append(SettlementStatement(st.account_id, st.account_code, st.account_name, st.opening_balance,
                                       sums["redeemed"], sums["refunded"], sums["settled"], sums["other"],
                                       st.closing_balance, settlements))
    return out


def settlement_statements(books: Books, from_day: dt.date, to_day: dt.date,
                          merchant: str | None = None) -> ReportRows:
    """The statements (a list) with ``read``: where and as of when they were read."""
    return read_report(books, lambda s: settlement_statements_in(s, from_day, to_day, merchant,
                                                                 calendar=books.calendar))


# --- anomalies -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AnomalyParams:
    min_awards: int = 5  # fewer awards than this say nothing about a pattern
    top: int = 3  # "few volunteers"
    concentration: float = 0.8  # share of an officer's awards going to the top volunteers
    one_source_share: float = 0.9  # share of a volunteer's awards from one officer
    threshold: int | None = None  # awards above it need a second approval (earning rules)
    under_margin: float = 0.1  # "just under" = within this fraction below the threshold
    redeem_factor: float = 5.0  # a wallet's redemptions at one merchant vs the merchant's median wallet
    redeem_min_beans: int = 100
    refund_window_minutes: int = 60
    refund_burst: int = 5  # refunds at one merchant within the window
    backfill_days: int = 7  # a claim submitted more than this long after the work ended


@dataclass
class AnomalyReport:
    from_day: dt.date
    to_day: dt.date
    params: AnomalyParams
    officer_concentration: list[dict[str, Any]] = field(default_factory=list)
    single_source_volunteers: list[dict[str, Any]] = field(default_factory=list)
    under_threshold: list[dict[str, Any]] = field(default_factory=list)
    redemption_outliers: list[dict[str, Any]] = field(default_factory=list)
    refund_bursts: list[dict[str, Any]] = field(default_factory=list)
    backfilled_claims: list[dict[str, Any]] | None = None  # None: the claims table is not there
    notes: list[str] = field(default_factory=list)
    read: ReadPoint | None = None

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["from_day"], body["to_day"] = self.from_day.isoformat(), self.to_day.isoformat()
        body["read"] = _read(self.read)
        return body

    def count(self) -> int:
        return (len(self.officer_concentration) + len(self.single_source_volunteers) + len(self.under_threshold)
                + len(self.redemption_outliers) + len(self.refund_bursts) + len(self.backfilled_claims or []))


def _period_filter(session: Session, start: dt.datetime, end: dt.datetime) -> Any:
    from ledger.audit.statements import created_before

    return and_(~created_before(session, Transfer.created_at, start), created_before(session, Transfer.created_at, end))


def anomalies_in(session: Session, from_day: dt.date, to_day: dt.date, params: AnomalyParams, *,
                 calendar: Calendar) -> AnomalyReport:
    if to_day < from_day:
        raise DomainError(errors.VALIDATION_FAILED, "the period ends before it starts")
    start, end = calendar.day_start(from_day), calendar.day_start(to_day + dt.timedelta(days=1))
    report = AnomalyReport(from_day, to_day, params)
    in_period = _period_filter(session, start, end)
    codes = dict(session.execute(select(Account.id, Account.code)).all())
    posted = Transfer.phase.in_(("single", "post"))

    # awards: the awarding officer -> wallet. An award held for a second approval is posted by the
    # approver; the officer who made it is the actor of the hold.
    held = aliased(Transfer)
    officer = func.coalesce(held.actor, Transfer.actor)
    awards = (select(officer.label("officer"), Transfer.credit_account_id.label("wallet"),
                     Transfer.amount.label("amount"))
              .outerjoin(held, held.id == Transfer.pending_id)
              .where(Transfer.kind == "award", posted, in_period).subquery())
    by_officer = _award_concentration(session, awards, codes, params, report)
    _under_threshold(session, awards, by_officer, params, report)
    _redemption_outliers(session, and_(posted, in_period), codes, params, report)
    _refund_bursts(session, and_(posted, in_period), codes, params, report)
    report.backfilled_claims = _backfilled_claims(session, start, end, params, report)
    _name_people(session, report)
    return report


def _award_concentration(session: Session, awards: Any, codes: dict[int, str], params: AnomalyParams,
                         report: AnomalyReport) -> dict[str, dict[int, tuple[int, int]]]:
    """Officers whose awards go to a few volunteers, and volunteers whose beans come from one officer.
    Returns officer -> wallet -> (awards, beans)."""
    pairs = session.execute(
        select(awards.c.officer, awards.c.wallet, func.count(), func.sum(awards.c.amount))
        .group_by(awards.c.officer, awards.c.wallet)
    ).all()
    by_officer: dict[str, dict[int, tuple[int, int]]] = defaultdict(dict)
    by_wallet: dict[int, dict[str, tuple[int, int]]] = defaultdict(dict)
    for actor, wallet, n, total in pairs:
        by_officer[actor][wallet] = (int(n), int(total))
        by_wallet[wallet][actor] = (int(n), int(total))
    for actor, wallets in by_officer.items():
        n = sum(c for c, _ in wallets.values())
        total = sum(t for _, t in wallets.values())
        if n < params.min_awards or total <= 0:
            continue
        top = sorted(wallets.items(), key=lambda kv: -kv[1][1])[: params.top]
        share = sum(t for _, (_, t) in top) / total
        if share >= params.concentration:
            report.officer_concentration.append({
                "officer": actor, "awards": n, "beans": total, "volunteers": len(wallets),
                "top_share": round(share, 3),
                "top_wallets": [{"account": codes.get(w, w), "awards": c, "beans": t} for w, (c, t) in top]})
    report.officer_concentration.sort(key=lambda r: -r["top_share"])
    for wallet, actors in by_wallet.items():
        n = sum(c for c, _ in actors.values())
        total = sum(t for _, t in actors.values())
        if n < params.min_awards or total <= 0:
            continue
        actor, (c, t) = max(actors.items(), key=lambda kv: kv[1][1])
        if t / total >= params.one_source_share:
            report.single_source_volunteers.append({
                "wallet": codes.get(wallet, wallet), "awards": n, "beans": total, "officer": actor,
                "officer_share": round(t / total, 3), "officers": len(actors)})
    report.single_source_volunteers.sort(key=lambda r: -r["officer_share"])

    return by_officer


def _under_threshold(session: Session, awards: Any, by_officer: dict[str, dict[int, tuple[int, int]]],
                     params: AnomalyParams, report: AnomalyReport) -> None:
    # awards just under the approval threshold
    if params.threshold:
        # an award above the threshold needs a second officer; "just under" is the band below it
        low = max(1, int(params.threshold * (1 - params.under_margin)))
        rows = session.execute(
            select(awards.c.officer, func.count(), func.sum(awards.c.amount))
            .where(awards.c.amount >= low, awards.c.amount <= params.threshold)
            .group_by(awards.c.officer)).all()
        totals = {a: sum(c for c, _ in w.values()) for a, w in by_officer.items()}
        for actor, n, beans in rows:
            report.under_threshold.append({
                "officer": actor, "just_under": int(n), "beans": int(beans), "awards": totals.get(actor, int(n)),
                "share": round(int(n) / max(1, totals.get(actor, int(n))), 3),
                "band": [low, params.threshold]})
        report.under_threshold.sort(key=lambda r: (-r["just_under"], r["officer"]))
    else:
        report.notes.append("no approval threshold given: awards just under it were not looked for")


def _redemption_outliers(session: Session, in_period: Any, codes: dict[int, str], params: AnomalyParams,
                         report: AnomalyReport) -> None:
    # redemptions: a wallet's beans at one merchant far above that merchant's median wallet
    per_pair = session.execute(
        select(Transfer.credit_account_id, Transfer.debit_account_id, func.count(), func.sum(Transfer.amount))
        .where(Transfer.kind == "redeem", in_period)
        .group_by(Transfer.credit_account_id, Transfer.debit_account_id)).all()
    by_merchant: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for merchant, wallet, n, total in per_pair:
        by_merchant[merchant].append((wallet, int(n), int(total)))
    for merchant, wallets in by_merchant.items():
        if len(wallets) < 3:
            continue
        median = statistics.median(t for _, _, t in wallets)
        for wallet, n, total in wallets:
            if total >= params.redeem_min_beans and total >= params.redeem_factor * median:
                report.redemption_outliers.append({
                    "merchant": codes.get(merchant, merchant), "wallet": codes.get(wallet, wallet),
                    "redemptions": n, "beans": total, "merchant_median": median,
                    "times_median": round(total / median, 1) if median else None})
    report.redemption_outliers.sort(key=lambda r: -r["beans"])


def _refund_bursts(session: Session, in_period: Any, codes: dict[int, str], params: AnomalyParams,
                   report: AnomalyReport) -> None:
    # bursts of refunds at one merchant
    window = dt.timedelta(minutes=params.refund_window_minutes)
    rows = session.execute(
        select(Transfer.debit_account_id, Transfer.created_at, Transfer.amount)
        .where(Transfer.kind == "refund", in_period)
        .order_by(Transfer.debit_account_id, Transfer.created_at, Transfer.id)
        .execution_options(yield_per=2000))
    recent: deque[tuple[int, dt.datetime, int]] = deque()
    current = None
    burst: dict[str, Any] | None = None

    def flush() -> None:
        nonlocal burst
        if burst is not None:
            burst.pop("_last")
            report.refund_bursts.append(burst)
            burst = None

    for i, (merchant, created, amount) in enumerate(rows):
        created = as_utc(created)
        if merchant != current:
            flush()
            recent.clear()
            current = merchant
        recent.append((i, created, int(amount)))
        while created - recent[0][1] > window:
            recent.popleft()
        if len(recent) < params.refund_burst:
            continue
        if burst is None or burst["_last"] < recent[0][0]:  # a new burst, not overlapping the last one
            flush()
            burst = {"merchant": codes.get(merchant, merchant), "from": recent[0][1].isoformat(), "to": None,
                     "refunds": 0, "beans": 0, "_last": recent[0][0] - 1}
        for j, t, a in recent:
            if j > burst["_last"]:
                burst["refunds"] += 1
                burst["beans"] += a
                burst["_last"] = j
                burst["to"] = t.isoformat()
    flush()


def _user_id_of(ref: Any) -> int | None:
    """The user id in ``user:<id>`` (an actor) or ``wallet:user:<id>`` (a wallet's code)."""
    if not isinstance(ref, str):
        return None
    ident = ref.removeprefix("wallet:").removeprefix("user:")
    return int(ident) if ref.startswith(("user:", "wallet:user:")) and ident.isdigit() else None


def _name_people(session: Session, report: AnomalyReport) -> None:
    """Beside every ``user:N`` and ``wallet:user:N`` the report names, the person's name and username, so an
    auditor reads who, not only a number (``officer_name``, ``holder``, ``volunteer_name``...)."""
    if "users" not in set(inspect(session.connection()).get_table_names()):
        return
    from ledger.access.models import User

    entries = (report.officer_concentration + report.single_source_volunteers + report.under_threshold
               + report.redemption_outliers)
    wallets = [w for e in report.officer_concentration for w in e["top_wallets"]]
    claims = report.backfilled_claims or []
    ids = {_user_id_of(e.get(k)) for e in entries for k in ("officer", "wallet")}
    ids |= {_user_id_of(w["account"]) for w in wallets}
    ids |= {c[k] for c in claims for k in ("volunteer_id", "submitted_by_id", "decided_by_id")}
    ids.discard(None)
    names = {r.id: f"{r.display_name} ({r.username})" for r in session.execute(
        select(User.id, User.display_name, User.username).where(User.id.in_(sorted(ids))))} if ids else {}
    for e in entries:
        if "officer" in e:
            e["officer_name"] = names.get(_user_id_of(e["officer"]))
        if "wallet" in e:
            e["holder"] = names.get(_user_id_of(e["wallet"]))
    for w in wallets:
        w["holder"] = names.get(_user_id_of(w["account"]))
    for c in claims:
        for k in ("volunteer_id", "submitted_by_id", "decided_by_id"):
            c[k.replace("_id", "_name")] = names.get(c[k])


def _backfilled_claims(session: Session, start: dt.datetime, end: dt.datetime, params: AnomalyParams,
                       report: AnomalyReport) -> list[dict[str, Any]] | None:
    try:
        from ledger.earning.models import Claim
    except ImportError:  # pragma: no cover - before the claims table existed
        report.notes.append("no claims table: back-filled claims were not looked for")
        return None
    if "claims" not in set(inspect(session.connection()).get_table_names()):
        report.notes.append("no claims table: back-filled claims were not looked for")
        return None
    late = dt.timedelta(days=params.backfill_days)
    out = []
    rows = session.execute(
        select(Claim.id, Claim.kind, Claim.status, Claim.volunteer_id, Claim.submitted_by_id, Claim.org_unit_id,
               Claim.occurred_at, Claim.ended_at, Claim.submitted_at, Claim.decided_by_id)
        .where(Claim.submitted_at >= start, Claim.submitted_at < end)
        .order_by(Claim.id).execution_options(yield_per=2000))
    for r in rows:
        # as the earning rules count it: from the end of the work (a patrol's end, a tip's time)
        delay = as_utc(r.submitted_at) - as_utc(r.ended_at or r.occurred_at)
        if delay > late:
            out.append({"claim_id": r.id, "kind": r.kind, "status": r.status, "volunteer_id": r.volunteer_id,
                        "submitted_by_id": r.submitted_by_id, "org_unit_id": r.org_unit_id,
                        "occurred_at": _iso(r.occurred_at), "submitted_at": _iso(r.submitted_at),
                        "days_late": round(delay.total_seconds() / 86400, 1), "decided_by_id": r.decided_by_id})
    return out


def default_anomaly_params(books: Books, **overrides: Any) -> AnomalyParams:
    """The parameters, with the approval threshold and back-fill delay of the earning rules."""
    rules = books.settings.earning
    base: dict[str, Any] = {"threshold": rules.approval_threshold, "backfill_days": rules.backfill_days}
    base.update({k: v for k, v in overrides.items() if v is not None})
    return AnomalyParams(**base)


def anomaly_report(books: Books, from_day: dt.date, to_day: dt.date,
                   params: AnomalyParams | None = None) -> AnomalyReport:
    params = params or default_anomaly_params(books)
    return read_report(books, lambda s: anomalies_in(s, from_day, to_day, params, calendar=books.calendar))
