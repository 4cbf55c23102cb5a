"""Who is calling the API: ``Authorization: Bearer <access token>`` → an ``Actor``.

``current_actor()`` verifies the token (see ``ledger.tokens``) and loads the user's grants once per
request; ``requires_roles(*roles)`` refuses callers that hold none of the roles (``permission_denied``).
Scope against the object's org unit is checked by the use case, not here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import g, request

from doors import current_books
from ledger import errors
from ledger.access.identity import Actor
from ledger.access.tokens import actor_for_token
from ledger.errors import DomainError

BEARER_SECURITY = [{"bearerAuth": []}]


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise DomainError(errors.INVALID_TOKEN, "use Authorization: Bearer <token>")
    return token.strip()


def current_actor() -> Actor:
    cached = g.get("goldbean_actor")
    if cached is not None:
        return cached
    token = bearer_token()
    if token is None:
        raise DomainError(errors.NOT_AUTHENTICATED)
    actor = actor_for_token(current_books(), token)
    g.goldbean_actor = actor
    return actor


def requires_roles(*roles: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The view needs a signed-in caller holding at least one of ``roles`` (any role if none given)."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            actor = current_actor()
            if roles and not any(actor.has_role(r) for r in roles):
                raise DomainError(errors.PERMISSION_DENIED, required_roles=list(roles))
            return view(*args, **kwargs)

        wrapper.required_roles = roles  # type: ignore[attr-defined]
        wrapper.access_policy = "roles"  # type: ignore[attr-defined]
        return wrapper

    return decorate


def public(view: Callable[..., Any]) -> Callable[..., Any]:
    """Declare a view open to anyone, signed in or not (the access-matrix test refuses undeclared views)."""
    view.access_policy = "public"  # type: ignore[attr-defined]
    return view


def access_policy(view: Callable[..., Any]) -> str | None:
    """``"public"``, ``"roles"`` (see ``required_roles``) or None when the view declares nothing."""
    policy = getattr(view, "access_policy", None)
    if policy is None and hasattr(view, "required_roles"):
        policy = "roles"
    return policy
