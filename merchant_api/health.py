"""Liveness and readiness for load balancers and operators."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from goldbean import books_of
from goldbean.migrate import at_head

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():  # noqa: ANN201
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():  # noqa: ANN201
    books = books_of(current_app)
    checks = {}
    try:
        with books.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
        checks["migrations"] = "ok" if at_head(books.engine) else "behind"
    except Exception as exc:  # noqa: BLE001 - readiness reports any failure as not ready
        checks["database"] = f"unreachable: {type(exc).__name__}"
    checks["signing_keys"] = "ok" if books.keys.active("ledger") is not None else "missing"
    ready = all(v == "ok" for v in checks.values())
    return jsonify(status="ready" if ready else "not_ready", checks=checks), 200 if ready else 503
