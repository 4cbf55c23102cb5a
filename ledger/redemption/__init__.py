"""Room ``redemption``: beans spent at merchants.

Owns the tables ``tills``, ``catalogue_items``, ``cards``, ``spent_codes``, ``redemptions``, ``refunds``,
``settlements`` and ``idempotency_records`` (``models``): signed wallet and card codes (``codes``), redeeming at a
till, holds a volunteer confirms, receipts, refunds, monthly settlement (``settlement``) and pruning spent codes
(``housekeeping``).
May call: ``ledger.access``, ``ledger.journal``, ``ledger.infra``, ``ledger.errors``. Not the other capability rooms.
"""

# the room's public use cases, so that a door writes ``from ledger import redemption``
from ledger.redemption.core import (
    DEFAULTS,
    MAX_ITEMS,
    MAX_QTY,
    PIN_RE,
    TILL_KEY_PREFIX,
    Answer,
    TillContext,
    add_item,
    authenticate_till,
    authorize_card_admin,
    canonical_json,
    confirm_hold,
    decline_hold,
    get_card,
    get_redemption,
    is_till_key,
    issue_card,
    issue_payment_code,
    issue_till,
    lift_till_pin_throttle,
    list_items,
    list_redemptions,
    list_tills,
    local_tz,
    merchant_of_redemption,
    paused_tills,
    redeem,
    redeem_at_till,
    redemption_view,
    refund,
    request_hash,
    revoke_card,
    revoke_till,
    setting,
    unlock_card,
    update_item,
    wallet_overview,
)
