"""The fund manager's page: where the donated beans are, donations, budget allocations, settlement runs."""

from __future__ import annotations

import datetime as dt
import re
import uuid

from flask import Blueprint, flash, g, render_template, request, url_for
from flask_babel import format_decimal, gettext

from doors import current_books
from ledger import earning, errors
from ledger.errors import DomainError
from ledger.redemption import settlement
from ledger.views import directory

from . import web
from .messages import sentence_for

bp = Blueprint("ui_fund", __name__, url_prefix="/fund")


def _last_month() -> str:
    today = current_books().calendar.today(current_books().now()).replace(day=1)
    prev = today - dt.timedelta(days=1)
    return f"{prev.year:04d}-{prev.month:02d}"


@bp.get("")
@web.requires("fund_manager")
def page():
    books, actor = current_books(), g.actor
    return render_template("ui/fund.html", position=earning.fund_position(books, actor),
                           budgets=earning.budget_balances(books, actor),
                           communities=directory.communities(books, actor),
                           settlements=list(reversed(settlement.list_settlements(books)))[:50],
                           last_month=_last_month(), form_key=uuid.uuid4().hex)


@bp.post("/donations")
@web.requires("fund_manager")
def donation():
    try:
        out = earning.record_donation(current_books(), g.actor, amount=web.form_int("amount", minimum=1),
                                      donor=(request.form.get("donor") or "").strip()[:200],
                                      reference=(request.form.get("reference") or "").strip()[:200] or None,
                                      key=(request.form.get("form_key") or None))
    except DomainError as exc:
        web.refuse(exc)
    else:
        flash(gettext("Donation of %(n)s beans recorded.", n=out["amount"]), "ok")
    return web.back(url_for("ui_fund.page"))


@bp.post("/allocations")
@web.requires("fund_manager")
def allocation():
    try:
        out = earning.allocate_budget(current_books(), g.actor, org_unit_id=web.form_int("org_unit_id"),
                                      amount=web.form_int("amount", minimum=1),
                                      reason=(request.form.get("reason") or "").strip()[:500],
                                      key=(request.form.get("form_key") or None))
    except DomainError as exc:
        web.refuse(exc)
    else:
        flash(gettext("%(n)s beans allocated.", n=out["amount"]), "ok")
    return web.back(url_for("ui_fund.page"))


@bp.post("/settlements")
@web.requires("fund_manager")
def run_settlement():
    """Settling a month asks first, with what it would pay; a month not yet over is refused on that page."""
    period = (request.form.get("period") or "").strip()
    back = url_for("ui_fund.page")
    try:
        if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", period):
            raise DomainError(errors.VALIDATION_FAILED, field="period")
        due = settlement.preview_settlement(current_books(), period, by=g.actor)
    except DomainError as exc:
        if exc.code != errors.PERIOD_NOT_ENDED.code:
            web.refuse(exc)
            return web.back(back)
        due, refusal = None, sentence_for(exc)
    else:
        refusal = None
    facts = [(gettext("Month"), period)]
    if due is not None:
        facts += [(gettext("Merchants to pay"), due["merchants"]), (gettext("Beans to pay (1 bean = 1 RMB)"),
                                                                    format_decimal(due["amount"]))]
        if due["settled"]:
            facts.append((gettext("Settled already (left as they are)"), due["settled"]))
    page = web.confirm_step(f"settle:{period}", title=gettext("Settle %(p)s with every merchant?", p=period),
                            facts=facts, cancel=back, button=gettext("Settle"), refusal=refusal,
                            warning=gettext("The beans move from the merchants to the payout account; a settlement "
                                            "cannot be undone. Running the same month again changes nothing."))
    if page is not None:
        return page
    try:
        rows = settlement.run_settlement(current_books(), period, g.actor.ref)
    except DomainError as exc:
        web.refuse(exc)
    else:
        flash(gettext("Settlement for %(p)s: %(n)s merchants, %(b)s beans.", p=period, n=len(rows),
                      b=sum(r["amount"] for r in rows)), "ok")
    return web.back(back)
