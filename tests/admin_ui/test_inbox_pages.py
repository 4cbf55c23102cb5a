"""The inbox page (消息): a volunteer sees what an officer's decision told them, in Chinese, opens it (marked
read, taken to the page it is about) and marks the rest read; the navigation links to it."""

from __future__ import annotations

import re

from sqlalchemy import select

from doors import books_of
from ledger import earning
from ledger.schema import Claim, User

from .conftest import csrf_of


def test_a_decision_reaches_the_volunteers_inbox_page(seeded, signed_in) -> None:
    books = books_of(seeded)
    with books.session(readonly=True) as s:
        volunteer = s.scalar(select(User.id).where(User.username == "volunteer"))
        claim = s.scalar(select(Claim).where(Claim.volunteer_id == volunteer, Claim.status == "submitted"))
        officer_id = s.scalar(select(User.id).where(User.username == "officer"))
    from ledger.access.identity import load_actor

    with books.session(readonly=True) as s:
        officer = load_actor(s, officer_id)
    earning.reject_claim(books, officer, claim.id, reason="照片不清楚")
    client = signed_in("volunteer")
    page = client.get("/inbox")
    assert page.status_code == 200 and "申报未通过" in page.text
    unread = lambda html: int(re.search(r'id="unread">(\d+) 条未读', html).group(1))
    before = unread(page.text)
    assert "照片不清楚" not in page.text  # the officer's note stays on the claim, not in messages
    assert 'id="nav-inbox"' in client.get("/wallet").text
    note_id = int(page.text.split('id="open-')[1].split('"')[0])  # the newest: the rejection
    outsider = signed_in("officer")
    theirs = outsider.post(f"/inbox/{note_id}/read", data={"csrf_token": csrf_of(outsider.get("/inbox").text)})
    assert theirs.status_code == 302 and theirs.headers["Location"].endswith("/inbox")  # not theirs: refused
    assert unread(client.get("/inbox").text) == before
    opened = client.post(f"/inbox/{note_id}/read", data={"csrf_token": csrf_of(page.text)})
    assert opened.status_code == 302 and opened.headers["Location"].endswith("/wallet")
    assert unread(client.get("/inbox").text) == before - 1
    done = client.post("/inbox/read-all", data={"csrf_token": csrf_of(page.text)})
    assert done.status_code == 302 and unread(client.get("/inbox").text) == 0
