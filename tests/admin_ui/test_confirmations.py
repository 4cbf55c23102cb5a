"""Every destructive staff action asks first, on a page of its own (it works without JavaScript), and is safe to
submit twice: the first press changes nothing; the confirmation acts once; the confirmation sent again (a double
tap, a reload that resends it, a second tab) says it was done already and changes nothing more."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from doors import books_of
from ledger import redemption
from ledger.schema import Award, Card, Claim, RoleGrant, SecurityEvent, Settlement, Transfer, User

from .conftest import confirmation, csrf_of


def _user(app, username: str) -> int:
    with books_of(app).session(readonly=True) as s:
        return s.scalar(select(User.id).where(User.username == username))


def _state(app) -> tuple:
    with books_of(app).session(readonly=True) as s:
        count = lambda model: s.scalar(select(func.count()).select_from(model))
        return (count(Transfer), count(Settlement), count(SecurityEvent), count(RoleGrant),
                tuple(s.execute(select(User.id, User.active).order_by(User.id)).all()),
                tuple(s.execute(select(Claim.id, Claim.status).order_by(Claim.id)).all()),
                tuple(s.execute(select(Award.id, Award.status).order_by(Award.id)).all()),
                tuple(s.execute(select(Card.id, Card.status).order_by(Card.id)).all()))


def _action(app, name: str) -> tuple[str, str, dict, str]:
    """(who, url, the form as the page sends it, a word the confirmation page must show)."""
    books = books_of(app)
    with books.session(readonly=True) as s:
        claim = s.scalar(select(Claim.id).where(Claim.status == "submitted"))
        award = s.scalar(select(Award.id).where(Award.status == "pending_approval"))
        shop = s.scalar(select(RoleGrant.merchant_id).where(RoleGrant.role == "cashier"))
    volunteer = _user(app, "volunteer")
    if name == "disable":
        return "admin", f"/admin/users/{volunteer}/active", {"active": "0"}, "赵志愿者"
    if name == "revoke":
        return ("admin", f"/admin/users/{_user(app, 'cashier')}/grants/revoke",
                {"role": "cashier", "scope": f"merchant:{shop}"}, "收银员")
    if name == "settle":
        return "fund", "/fund/settlements", {"period": "2026-10"}, "2026-10"
    if name == "reject":
        return "officer2", f"/officer/claims/{claim}/reject", {"reason": "重复申报"}, f"第 {claim} 号申报"
    if name == "void":
        return "officer2", f"/officer/awards/{award}/void", {"reason": "证据不足"}, f"第 {award} 号发放"
    card = redemption.issue_card(books, volunteer, "test", "1357")["card"]["id"]
    return "officer", f"/officer/cards/{card}/revoke", {}, "赵志愿者"


ACTIONS = ("revoke_card", "reject", "void", "settle", "revoke", "disable")  # one seeded district for all of them


def test_every_destructive_action_asks_first_and_acts_once(signed_in, seeded) -> None:
    clients = {}
    for name in ACTIONS:
        who, url, form, shows = _action(seeded, name)
        client = clients.setdefault(who, signed_in(who))
        landing = client.get("/").headers.get("Location", "/")
        form = {**form, "csrf_token": csrf_of(client.get(landing).text)}
        before = _state(seeded)
        step = client.post(url, data=form)
        assert step.status_code == 200 and 'id="confirm-form"' in step.text and shows in step.text, name
        assert 'id="confirm-cancel"' in step.text, name  # a way back
        assert _state(seeded) == before, f"{name}: the first press changes nothing"
        action, confirmed = confirmation(step.text)
        assert confirmed["confirmed"] == "1" and confirmed["once"], name
        if "reason" in confirmed:  # a reason is asked for, kept from the first form, and required
            missing = client.post(action, data={**confirmed, "reason": ""})
            assert missing.status_code == 422 and _state(seeded) == before, name
        done = client.post(action, data=confirmed)
        assert done.status_code == 302, name
        after = _state(seeded)
        assert after != before, f"{name}: the confirmation acts"
        again = client.post(action, data=confirmed)  # the confirmation resent: a reload, a double tap
        assert again.status_code == 302 and _state(seeded) == after, f"{name}: a resend acts again"
        assert "已经办理过了" in client.get(again.headers["Location"]).text, name


def test_two_tabs_each_confirm_their_own_form_and_a_stale_one_still_acts_once(signed_in, seeded) -> None:
    """The one-time key is per page view and spent in the database: a second tab's confirmation of the same
    settlement acts (the run itself is idempotent: it adds nothing), but each page's own key acts once."""
    fund = signed_in("fund")
    token = csrf_of(fund.get("/fund").text)
    first = confirmation(fund.post("/fund/settlements", data={"csrf_token": token, "period": "2026-10"}).text)
    second = confirmation(fund.post("/fund/settlements", data={"csrf_token": token, "period": "2026-10"}).text)
    assert first[1]["once"] != second[1]["once"]
    assert fund.post(first[0], data=first[1]).status_code == 302
    settled = _state(seeded)
    assert fund.post(second[0], data=second[1]).status_code == 302
    assert _state(seeded)[:2] == settled[:2]  # no transfer, no statement more
    assert "已经办理过了" in fund.get(fund.post(first[0], data=first[1]).headers["Location"]).text


def test_confirmation_pages_are_refused_without_the_csrf_token(signed_in, seeded) -> None:
    admin = signed_in("admin")
    uid = _user(seeded, "volunteer")
    step = admin.post(f"/admin/users/{uid}/active", data={"csrf_token": csrf_of(admin.get("/admin").text),
                                                          "active": "0"})
    action, fields = confirmation(step.text)
    fields.pop("csrf_token")
    assert admin.post(action, data=fields).status_code == 400
    assert re.search(r"/admin/users/\d+/active", action)
    with books_of(seeded).session(readonly=True) as s:
        assert s.get(User, uid).active
