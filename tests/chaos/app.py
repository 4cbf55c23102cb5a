"""The app the chaos harness serves under gunicorn: the real ``create_app()``, with the earning caps,
the daily redemption limit and the issuance rate limits raised so that a few simulated tills and
officers can run for minutes without hitting the business limits (those are tested elsewhere)."""

from __future__ import annotations

from typing import Any

CHAOS_SETTINGS: dict[str, Any] = {
    "earning": {"volunteer_daily_cap": 10**9, "volunteer_monthly_cap": 10**9, "officer_daily_cap": 10**9},
    "volunteer_daily_limit": None,
    "rate_limits": {"token_per_ip": 10**6, "token_per_user": 10**6, "code_per_user": 10**6},
}


def create_app():
    from goldbean.app import create_app as real_create_app

    return real_create_app({"LEDGER_SETTINGS": CHAOS_SETTINGS})
