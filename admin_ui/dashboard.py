"""The district dashboard: beans donated, awarded, redeemed and settled per week and per street office,
drawn as server-rendered SVG bars (no chart library, no script), and the month's leaderboards."""

from __future__ import annotations

from flask import Blueprint, g, render_template

from doors import current_books
from ledger import earning, patrols
from ledger.errors import DomainError
from ledger.views import directory

from . import web

bp = Blueprint("ui_dashboard", __name__, url_prefix="/dashboard")
STAFF = ("officer", "admin", "auditor", "fund_manager")
KINDS = ("donate", "award", "redeem", "settle")


def _share(value: int, top: int) -> float:
    """A bar's length, 0 to 100, against the largest of its chart (a value above zero shows at least a sliver)."""
    if value <= 0 or top <= 0:
        return 0
    return max(1.5, round(100 * value / top, 1))


@bp.get("")
@web.requires(*STAFF)
def page():
    """The charts are rows of HTML text (the week, the figure) beside bars drawn as small SVG rectangles with no
    text in them: the text keeps the page's type size on any screen instead of shrinking with a scaled SVG."""
    books, actor = current_books(), g.actor
    data = directory.dashboard(books, actor, weeks=8)
    weekly_top = {k: max([0, *(w[k] for w in data["weeks"])]) for k in KINDS}  # each kind on its own scale
    street_top = max([0, *(st[k] for st in data["streets"] for k in ("award", "redeem"))])
    district = data["district_id"]
    volunteers = earning.volunteer_leaderboard(books, actor, org_unit_id=district, limit=10) if district else None
    communities = earning.community_leaderboard(books, actor, org_unit_id=district) if district else None
    return render_template("ui/dashboard.html", data=data, kinds=KINDS, weekly_top=weekly_top, share=_share,
                           street_top=street_top, volunteers=volunteers, communities=communities,
                           patrol_now=_patrol_now(books, actor))


def _patrol_now(books, actor) -> dict[str, int] | None:
    """The patrol posts' states now (the coverage board's counts), for those who may see the board."""
    try:
        rows = patrols.coverage(books, actor)
    except DomainError:
        return None
    states = ("covered", "short", "uncovered", "no_shift")
    return {state: sum(1 for r in rows if r.state == state) for state in states} | {
        "late": sum(len(r.late) for r in rows)}
