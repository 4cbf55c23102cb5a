"""Translated names for the stable words the ledger uses (transfer kinds, statuses, roles, levels)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

KINDS = {"donate": _l("Donation"), "allocate": _l("Budget allocation"), "award": _l("Award"),
         "redeem": _l("Redemption"), "refund": _l("Refund"), "settle": _l("Settlement"), "expire": _l("Expiry"),
         "reverse": _l("Reversal"), "adjust": _l("Adjustment")}
PHASES = {"single": "", "pending": _l("on hold"), "post": _l("confirmed"), "void": _l("released"),
          "expire": _l("expired")}
STATUSES = {"submitted": _l("Waiting for an officer"), "verified": _l("Verified"), "rejected": _l("Rejected"),
            "posted": _l("Paid"), "pending_approval": _l("Waiting for second approval"), "voided": _l("Refused"),
            "reversed": _l("Reversed"), "completed": _l("Completed"), "awaiting_confirmation": _l("Waiting for the volunteer"),
            "declined": _l("Declined"), "expired": _l("Expired"), "active": _l("Active"), "locked": _l("Locked"),
            "revoked": _l("Cancelled"), "suspended": _l("Suspended"), "closed": _l("Closed"), "open": _l("Open"),
            "frozen": _l("Frozen")}
ROLES = {"volunteer": _l("Volunteer"), "leader": _l("Group leader"), "officer": _l("Officer"),
         "fund_manager": _l("Fund manager"), "merchant_owner": _l("Shop owner"), "cashier": _l("Cashier"),
         "auditor": _l("Auditor"), "admin": _l("Administrator")}
LEVELS = {"district": _l("District"), "street": _l("Street office"), "community": _l("Community"),
          "group": _l("Resident group"), "building": _l("Building")}
CLAIM_KINDS = {"tip": _l("Tip"), "patrol": _l("Patrol")}
CATEGORIES = {"theft": _l("Theft"), "fraud": _l("Fraud"), "drugs": _l("Drugs"), "fire_hazard": _l("Fire hazard"),
              "traffic": _l("Traffic"), "dispute": _l("Dispute"), "suspicious": _l("Suspicious activity"),
              "other": _l("Other"), "missing": _l("Missing person")}
TIERS = {"low": _l("Low"), "medium": _l("Medium"), "high": _l("High"), "critical": _l("Critical")}
ACCOUNT_KINDS = {"donations": _l("Donations"), "fund": _l("Gold Bean Fund"), "budget": _l("Community budgets"),
                 "wallet": _l("Volunteer wallets"), "merchant": _l("Merchants"), "payout": _l("Paid to merchants"),
                 "expiry": _l("Expired beans"), "adjustment": _l("Adjustments")}
PURPOSES = {"ledger": _l("Ledger checkpoints"), "access": _l("Sign-in tokens"), "wallet": _l("Payment codes"),
            "card": _l("Bean cards"), "post_sign": _l("Patrol post signs"), "patrol_code": _l("Patrol leader codes"),
            "certificate": _l("Service certificates")}
METHODS = {"wallet_code": _l("Phone wallet"), "card": _l("Bean card"), "device_code": _l("Phone wallet (offline code)")}


def label(table: dict, key: object) -> str:
    value = table.get(key)  # type: ignore[arg-type]
    return str(value) if value is not None and str(value) else str(key or "")


def award_reason(reason: str | None) -> str:
    """An award's reason as the ledger writes it ("tip:theft", "patrol") in words; free text as is."""
    reason = reason or ""
    if reason == "patrol":
        return str(CLAIM_KINDS["patrol"])
    if reason.startswith("tip:") and reason[4:] in CATEGORIES:
        return f"{CLAIM_KINDS['tip']} · {CATEGORIES[reason[4:]]}"
    return reason


def register(app) -> None:
    app.jinja_env.globals.update(KINDS=KINDS, PHASES=PHASES, STATUSES=STATUSES, ROLES=ROLES, LEVELS=LEVELS,
                                 CLAIM_KINDS=CLAIM_KINDS, CATEGORIES=CATEGORIES, TIERS=TIERS,
                                 ACCOUNT_KINDS=ACCOUNT_KINDS, METHODS=METHODS, PURPOSES=PURPOSES, label=label)
    app.jinja_env.filters["award_reason"] = award_reason
