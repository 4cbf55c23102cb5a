"""Public ledger facts: the JWK set of every public verification key."""

from __future__ import annotations

from flask_smorest import Blueprint

from doors import current_books
from ledger.infra.keys import PURPOSES

blp = Blueprint("keys", __name__, url_prefix="/keys", description="Public keys for offline verification")


@blp.route("", methods=["GET"])
@blp.doc(security=[])
@blp.response(200)
def jwks():
    """The public keys (JWK set, Ed25519) that verify checkpoints, codes and tokens; `purpose` says which."""
    books = current_books()
    keys = []
    for purpose in PURPOSES:
        for jwk in books.keys.jwks(purpose)["keys"]:
            keys.append({**jwk, "purpose": purpose})
    return {"keys": keys}
