"""Fixtures for the web pages: the demo district seeded into the test app, and signing in."""

from __future__ import annotations

import re

import pytest

CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "the page has no CSRF token"
    return match.group(1)


@pytest.fixture
def seeded(app):
    from doors import books_of
    from goldbean.seed import seed_demo

    seed_demo(books_of(app))
    return app


def sign_in(client, username: str, password: str = "goldbean"):
    page = client.get("/signin")
    return client.post("/signin", data={"username": username, "password": password, "csrf_token": csrf_of(page.text)})


@pytest.fixture
def signed_in(seeded):
    """A function: a new test client signed in as ``username``, and the page it landed on."""

    def make(username: str):
        client = seeded.test_client()
        resp = sign_in(client, username)
        assert resp.status_code == 302, resp.text
        return client

    return make


CONFIRM_FORM_RE = re.compile(r'<form method="post" action="([^"]+)" class="card" id="confirm-form">(.*?)</form>', re.S)
INPUT_RE = re.compile(r'<input (?:type="hidden" )?(?:id="[^"]*" )?name="([^"]+)"[^>]*?value="([^"]*)"')


def confirmation(page_text: str) -> tuple[str, dict]:
    """The confirmation page's form: where it posts and every field it sends (the reason included)."""
    import html

    match = CONFIRM_FORM_RE.search(page_text)
    assert match, "no confirmation step on this page"
    fields = {name: html.unescape(value) for name, value in INPUT_RE.findall(match.group(2))}
    return html.unescape(match.group(1)), fields


def post_confirmed(client, url: str, data: dict, **changes):
    """A destructive form as a person sends it: the first press answers the confirmation page (nothing done
    yet); its form, sent with ``changes`` (a reason, say), does it. Returns (that answer, the confirmed form)."""
    step = client.post(url, data=data)
    assert step.status_code == 200, (url, step.status_code)
    action, fields = confirmation(step.text)
    fields.update(changes)
    return client.post(action, data=fields), fields


def asks_first_and_acts_once(client, url: str, data: dict, state, shows: str, **changes):
    """A destructive form as staff send it: the first press answers the confirmation page, which names ``shows``
    and has a way back, and changes nothing (``state()`` stays); its confirmation (with ``changes``: a reason,
    say) acts; sent again (a reload, a double tap) it changes nothing more. Returns the state after."""
    before = state()
    step = client.post(url, data=data)
    assert step.status_code == 200 and 'id="confirm-form"' in step.text, (url, step.status_code)
    assert shows in step.text and 'id="confirm-cancel"' in step.text, url
    assert state() == before, f"{url}: the first press changed something"
    action, fields = confirmation(step.text)
    assert fields["confirmed"] == "1" and fields["once"], url
    fields.update(changes)
    done = client.post(action, data=fields)
    assert done.status_code == 302, (url, done.status_code)
    after = state()
    assert after != before, f"{url}: the confirmation did nothing"
    again = client.post(action, data=fields)
    assert again.status_code == 302 and state() == after, f"{url}: the confirmation acted twice"
    return after
