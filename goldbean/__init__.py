"""The composition root: ``create_app()`` wires configuration, the ledger's ``Books``, the REST API
and the web pages together. Nothing here runs at import time."""

from __future__ import annotations

from typing import Any

from flask import Flask

from ledger.books import Books


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    from ledger.db import make_engine
    from ledger.keys import KeyStore
    from pathlib import Path

    from . import config

    cfg = config.load(test_config)
    app = Flask("goldbean", instance_path=cfg["INSTANCE_PATH"], instance_relative_config=False)
    app.config.update(cfg)

    engine = make_engine(cfg["DATABASE_URL"])
    keys = KeyStore(Path(cfg["INSTANCE_PATH"]) / "keys")
    books = Books(engine=engine, keys=keys, settings=dict(cfg.get("LEDGER_SETTINGS", {})))
    if "CLOCK" in cfg:
        books.clock = cfg["CLOCK"]
    app.extensions["goldbean.books"] = books

    from merchant_api import init_app as init_api
    from admin_ui import init_app as init_ui

    init_api(app)
    init_ui(app)

    from .observability import init_app as init_observability

    init_observability(app)  # request ids, JSON logs, /metrics

    from .cli import init_cli

    init_cli(app)
    return app


def books_of(app: Flask) -> Books:
    return app.extensions["goldbean.books"]
