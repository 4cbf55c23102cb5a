"""Patrol reminders and shift-change notices through the outbox: a reminder ``reminder_minutes`` before the start,
once (again once if the shift moves); every volunteer signed up (not yet checked in) is told of an edit or a
cancellation; a withdrawn volunteer is not."""

from __future__ import annotations

import datetime as dt

from ledger import notify, patrols
from tests.patrol_world import build_patrol_world


def titles(pw, who: str) -> list[str]:
    return [n.title for n in notify.inbox(pw.w.books, pw.w.actor(who)).items]


def test_a_reminder_before_the_shift_once(books, clock) -> None:
    books.settings = books.settings.with_overrides({"patrols": {"reminder_minutes": 60}})
    pw = build_patrol_world(books)  # the shift starts in 2 hours
    for who in ("v1", "leader"):
        patrols.sign_up(books, pw.w.actor(who), pw.shift_id)
    patrols.withdraw(books, pw.w.actor("leader"), pw.shift_id)
    assert patrols.send_reminders(books) == 0  # 2 hours ahead: not yet
    clock.now = pw.start - dt.timedelta(minutes=59)
    assert patrols.send_reminders(books) == 1
    assert patrols.send_reminders(books) == 0  # sent once
    [note] = notify.inbox(books, pw.w.actor("v1")).items
    assert (note.topic, note.title, note.link) == ("patrol_reminder", "巡逻提醒", "/patrols")
    assert "金沙一组1栋岗" in note.body and "19:00" in note.body  # Beijing time
    assert titles(pw, "leader") == []  # withdrawn
    clock.now = pw.start + dt.timedelta(minutes=1)
    assert patrols.send_reminders(books) == 0  # started: no reminder


def test_an_edited_or_cancelled_shift_tells_the_volunteers_signed_up(books, clock) -> None:
    pw = build_patrol_world(books)
    patrols.sign_up(books, pw.w.actor("v1"), pw.shift_id)
    officer = pw.w.actor("officerA2")
    patrols.edit_shift(books, officer, pw.shift_id, starts_at=pw.start + dt.timedelta(minutes=30))
    assert titles(pw, "v1") == ["班次已变更"]
    [note] = notify.inbox(books, pw.w.actor("v1")).items
    assert note.urgent and "19:30" in note.body
    assert titles(pw, "leader") == []  # not signed up
    clock.now = pw.start - dt.timedelta(minutes=60)
    assert patrols.send_reminders(books) == 1  # reminded of the new start
    patrols.edit_shift(books, officer, pw.shift_id, cancel=True)
    assert titles(pw, "v1") == ["班次已取消", "巡逻提醒", "班次已变更"]
