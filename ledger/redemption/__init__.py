"""Room ``redemption``: beans spent at merchants.

Owns the tables ``tills``, ``catalogue_items``, ``cards``, ``spent_codes``, ``redemptions``, ``refunds`` and
``settlements`` (``models``). Modules by job: ``tills`` (till keys; ``TillContext``, who is at the till),
``catalogue``, ``cards`` (bean cards and PINs), ``codes`` (signed wallet and card codes), ``devices`` (phones' keys and their offline codes), ``redeeming``,
``holds`` (the volunteer confirms or declines), ``receipts``, ``refunds``, ``wallet`` (the volunteer's view),
``settlement`` (monthly), ``housekeeping`` (pruning spent codes and idempotency records); ``core`` holds the
room's settings and the district's day. Every use case checks its principal against the merchant, card or
wallet itself, with the rules of ``ledger.access.policy``; writes go through ``ledger.infra.idempotency``.
May call: ``ledger.access``, ``ledger.journal``, ``ledger.infra``, ``ledger.errors``. Not the other capability rooms.
"""

# the room's public use cases, so that a door writes ``from ledger import redemption``
from ledger.infra.idempotency import Answer, canonical_json, request_hash
from ledger.redemption.cards import PIN_RE, authorize_card_admin, get_card, issue_card, revoke_card, unlock_card
from ledger.redemption.catalogue import MAX_ITEMS, MAX_QTY, add_item, list_items, update_item
from ledger.redemption.core import local_tz, setting
from ledger.redemption.devices import get_device, list_devices, register_device, revoke_device
from ledger.redemption.holds import confirm_hold, decline_hold
from ledger.redemption.pins import lift_till_pin_throttle, paused_tills
from ledger.redemption.receipts import get_redemption, list_redemptions, merchant_of_redemption, redemption_view
from ledger.redemption.redeeming import redeem, redeem_at_till
from ledger.redemption.refunds import refund
from ledger.redemption.tills import (
    TILL_KEY_PREFIX,
    TillContext,
    acting_merchant,
    authenticate_till,
    is_till_key,
    issue_till,
    list_tills,
    revoke_till,
)
from ledger.redemption.wallet import issue_payment_code, wallet_overview

__all__ = [
    "MAX_ITEMS", "MAX_QTY", "PIN_RE", "TILL_KEY_PREFIX", "Answer", "TillContext", "acting_merchant",
    "add_item", "authenticate_till", "authorize_card_admin", "canonical_json", "confirm_hold", "decline_hold",
    "get_card", "get_device", "get_redemption", "is_till_key", "issue_card", "issue_payment_code", "lift_till_pin_throttle",
    "paused_tills", "issue_till", "list_devices", "list_items", "list_redemptions",
    "list_tills", "local_tz", "merchant_of_redemption", "redeem", "redeem_at_till", "redemption_view", "refund", "register_device",
    "request_hash", "revoke_card", "revoke_device", "revoke_till", "setting", "unlock_card", "update_item", "wallet_overview",
]
