"""Public ledger facts: the JWK set of every public verification key."""

from __future__ import annotations

from marshmallow import fields

from doors import current_books
from ledger.infra.keys import PURPOSES

from .auth import public
from .edge import Blueprint
from .schemas import Out

blp = Blueprint("keys", __name__, url_prefix="/keys", description="Public keys for offline verification")


class Jwk(Out):
    kty = fields.String(required=True, metadata={"description": "OKP"})
    crv = fields.String(required=True, metadata={"description": "Ed25519"})
    x = fields.String(required=True)
    kid = fields.String(required=True)
    alg = fields.String(required=True, metadata={"description": "EdDSA"})
    use = fields.String(required=True, metadata={"description": "sig"})
    purpose = fields.String(required=True, metadata={"description": "what the key signs"})


class JwkSet(Out):
    keys = fields.List(fields.Nested(Jwk), required=True)


@blp.route("", methods=["GET"])
@public
@blp.doc(security=[])
@blp.response(200, JwkSet)
def jwks():
    """The public keys (JWK set, Ed25519) that verify checkpoints, codes and tokens; `purpose` says which."""
    books = current_books()
    keys = []
    for purpose in PURPOSES:
        for jwk in books.keys.jwks(purpose)["keys"]:
            keys.append({**jwk, "purpose": purpose})
    return {"keys": keys}
