"""``create_app()``: configuration, the ledger's ``Books``, the REST API, the web pages, health checks,
observability and the CLI wired into one Flask app. Nothing here runs at import time."""

from __future__ import annotations

from typing import Any

from flask import Flask

from doors import BOOKS_EXTENSION
from ledger.infra.books import Books


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    from pathlib import Path

    from ledger.infra.db import make_engine
    from ledger.infra.keys import KeyStore

    from . import config

    cfg = config.load(test_config)
    app = Flask("goldbean", instance_path=cfg["INSTANCE_PATH"], instance_relative_config=False)
    app.config.update(cfg)

    engine = make_engine(cfg["DATABASE_URL"])
    keys = KeyStore(Path(cfg["INSTANCE_PATH"]) / "keys")
    # the reports' engine (a standby): connections are recycled so that, after a failover promoted the standby
    # they were on, they find a standby again within half a minute
    read_engine = (make_engine(cfg["READ_DATABASE_URL"], read_only=True, pool_recycle=30)
                   if cfg.get("READ_DATABASE_URL") else None)
    books = Books(engine=engine, keys=keys, settings=config.ledger_settings(cfg), read_engine=read_engine)
    if "CLOCK" in cfg:
        books.clock = cfg["CLOCK"]
    app.extensions[BOOKS_EXTENSION] = books
    from ledger import radar

    books.listeners.append(radar.announce_in)  # a payment at a till reaches the volunteer's open app (event stream)

    from admin_ui import init_app as init_ui
    from merchant_api import init_app as init_api

    init_api(app)
    init_ui(app)

    from .health import bp as health_bp
    from .observability import init_app as init_observability

    app.register_blueprint(health_bp)

    init_observability(app)  # request ids, JSON logs, /metrics

    from .cli_areas import add_commands

    add_commands(app.cli)  # the goldbean commands, for app.test_cli_runner() and flask --app
    return app

