"""The inbox page (消息): the signed-in person's notifications from the outbox (``ledger.notify``), newest
first, unread ones marked, each with a link to the page it is about; mark one or all read."""

from __future__ import annotations

from flask import Blueprint, g, redirect, render_template, url_for

from doors import current_books
from ledger import notify
from ledger.errors import DomainError

from . import web

bp = Blueprint("ui_inbox", __name__, url_prefix="/inbox")


@bp.get("")
@web.requires()
def page():
    box = notify.inbox(current_books(), g.actor, limit=100)
    return render_template("ui/inbox.html", box=box)


@bp.post("/<int:notification_id>/read")
@web.requires()
def read(notification_id: int):
    try:
        note = notify.mark_read(current_books(), g.actor, notification_id)
    except DomainError as exc:
        web.refuse(exc)
        return redirect(url_for("ui_inbox.page"))
    return redirect(note.link if note.link and note.link.startswith("/") and not note.link.startswith("//")
                    else url_for("ui_inbox.page"))


@bp.post("/read-all")
@web.requires()
def read_all():
    notify.mark_all_read(current_books(), g.actor)
    return redirect(url_for("ui_inbox.page"))
