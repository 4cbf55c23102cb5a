"""Sign-in for API clients: username (or phone) and password → a short-lived bearer token."""

from __future__ import annotations

from flask import current_app
from flask_smorest import Blueprint
from marshmallow import RAISE, Schema, fields, validate

from goldbean import books_of
from ledger.identity import authenticate
from ledger.tokens import issue_access_token

blp = Blueprint("auth", __name__, url_prefix="/auth", description="Sign-in and API access tokens")


class TokenRequest(Schema):
    class Meta:
        unknown = RAISE

    username = fields.String(required=True, validate=validate.Length(min=1, max=64))
    password = fields.String(required=True, validate=validate.Length(min=1, max=200), load_only=True)


class TokenResponse(Schema):
    access_token = fields.String(required=True)
    token_type = fields.String(required=True)
    expires_in = fields.Integer(required=True)


@blp.route("/token", methods=["POST"])
@blp.doc(security=[])
@blp.arguments(TokenRequest)
@blp.response(200, TokenResponse)
def token(body: dict) -> dict:
    """Exchange a username (or phone) and password for a bearer token (EdDSA JWT, 15 minutes)."""
    books = books_of(current_app)
    actor = authenticate(books, body["username"], body["password"])
    access_token, expires_in = issue_access_token(books, actor)
    return {"access_token": access_token, "token_type": "Bearer", "expires_in": expires_in}
