"""Telling volunteers about their shifts, through the notification outbox (``ledger.notify``): a reminder
``PatrolRules.reminder_minutes`` before the start (the worker's ``patrol-reminders`` job), and a notice to every
volunteer signed up when an officer edits or cancels the shift (``edit_shift`` calls ``tell_changed_in`` in its
own transaction).

Each is recorded once: a reminder's key names the sign-up and the start it reminds of (a shift moved to
another time is reminded of again, once), a change's names the shift's version.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import notify
from ledger.infra.books import Books
from ledger.infra.db import utc_from_db
from ledger.patrols.models import PatrolPost, PatrolShift, PatrolSignup
from ledger.patrols.rules import rules_of

TOLD = ("pending", "signed_up")  # who has not come yet: checked-in volunteers are at the post already
LINK = "/patrols"


def _when(books: Books, moment: dt.datetime) -> str:
    return books.calendar.format(utc_from_db(moment), "%m月%d日 %H:%M")


def tell_changed_in(s: Session, books: Books, shift: PatrolShift, post: PatrolPost, *, cancelled: bool) -> int:
    """Every volunteer signed up (not yet checked in) hears of the edit; how many were told."""
    who = list(s.scalars(select(PatrolSignup.volunteer_id).where(PatrolSignup.shift_id == shift.id,
                                                                 PatrolSignup.status.in_(TOLD))))
    if cancelled:
        title, body = "班次已取消", f"您报名的{post.name}班次（{_when(books, shift.starts_at)}）已取消。"
    else:
        title = "班次已变更"
        body = (f"您报名后民警修改了{post.name}的班次：现为 {_when(books, shift.starts_at)} 至 "
                f"{books.calendar.format(utc_from_db(shift.ends_at), '%H:%M')}，请查看。")
    return notify.send_in(s, books, user_ids=who, topic="shift_changed", title=title, body=body,
                          dedupe=f"shift_changed:{shift.id}:v{shift.version}", link=LINK,
                          subject=f"patrol_shift:{shift.id}", urgent=True)


def send_reminders(books: Books, *, limit: int = 2000) -> int:
    """Remind every volunteer signed up for a shift starting within ``reminder_minutes``, once; how many."""
    def work(s: Session) -> int:
        now = books.now()
        until = now + dt.timedelta(minutes=rules_of(books).reminder_minutes)
        rows = s.execute(select(PatrolSignup, PatrolShift, PatrolPost)
                         .join(PatrolShift, PatrolShift.id == PatrolSignup.shift_id)
                         .join(PatrolPost, PatrolPost.id == PatrolShift.post_id)
                         .where(PatrolShift.status == "open", PatrolShift.starts_at > now,
                                PatrolShift.starts_at <= until, PatrolSignup.status.in_(TOLD))
                         .order_by(PatrolShift.starts_at, PatrolSignup.id).limit(limit)).all()
        told = 0
        for signup, shift, post in rows:
            start = utc_from_db(shift.starts_at)
            told += notify.send_in(
                s, books, user_ids=[signup.volunteer_id], topic="patrol_reminder", title="巡逻提醒",
                body=f"您报名的{post.name}班次将于 {_when(books, start)} 开始，请按时到岗签到。",
                dedupe=f"patrol_reminder:{signup.id}:{int(start.timestamp())}", link=LINK,
                subject=f"patrol_shift:{shift.id}")
        return told

    return books.run(work)
