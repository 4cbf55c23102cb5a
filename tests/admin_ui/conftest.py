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
