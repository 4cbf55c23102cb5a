"""What the two front doors (``merchant_api`` and ``admin_ui``) share, so that neither imports the other and
neither imports the composition root (``goldbean``): the ``Books`` of the running app, the HTTP status of a
domain error's category, and streamed downloads. No rules live here: a door parses, names the principal, calls
one room and renders its result.
"""

from __future__ import annotations

from typing import Any

from flask import current_app

BOOKS_EXTENSION = "goldbean.books"


def books_of(app: Any) -> Any:
    """The ``Books`` that ``goldbean.app.create_app`` bound to ``app``."""
    return app.extensions[BOOKS_EXTENSION]


def current_books() -> Any:
    """The ``Books`` of the app serving this request (or CLI command)."""
    return current_app.extensions[BOOKS_EXTENSION]
