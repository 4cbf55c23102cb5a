"""Sign-in for API clients: username (or phone) and password → a short-lived bearer token."""

from __future__ import annotations

from flask import request
from marshmallow import fields, validate

from doors import current_books
from ledger.access.security import sign_in
from ledger.access.tokens import issue_access_token

from .auth import public
from .edge import Blueprint
from .schemas import NO_STORE, NO_STORE_DOC, ErrorBody, In, Out, String

blp = Blueprint("auth", __name__, url_prefix="/auth", description="Sign-in and API access tokens")


class TokenRequest(In):
    username = String(required=True, validate=validate.Length(min=1, max=64))
    password = String(required=True, validate=validate.Length(min=1, max=200), load_only=True)


class TokenResponse(Out):
    access_token = fields.String(required=True)
    token_type = fields.String(required=True, metadata={"description": "Bearer"})
    expires_in = fields.Integer(required=True, metadata={"description": "seconds"})


@blp.route("/token", methods=["POST"])
@public
@blp.doc(security=[])
@blp.arguments(TokenRequest())
@blp.response(200, TokenResponse, headers=NO_STORE_DOC)
@blp.alt_response(401, schema=ErrorBody, description="`invalid_credentials`")
@blp.alt_response(429, schema=ErrorBody, description="`account_locked` (5 wrong passwords: 15 minutes or an officer's unlock), "
                  "`too_many_attempts` (too many failures from this address), `rate_limited`")
def token(body: dict) -> dict:
    """Exchange a username (or phone) and password for a bearer token (EdDSA JWT, 15 minutes).

    Every attempt is logged; guessing is throttled per user and per source address."""
    books = current_books()
    actor = sign_in(books, body["username"], body["password"], request.remote_addr)
    access_token, expires_in = issue_access_token(books, actor)
    return {"access_token": access_token, "token_type": "Bearer", "expires_in": expires_in}, NO_STORE
