"""Room ``journal``: the double-entry engine. It knows nothing of volunteers, merchants or roles.

Owns the tables ``accounts``, ``transfers``, ``entries``, ``checkpoints`` (``models``); posting (``posting``: single and
linked transfers, holds, post/void, reversals, all-or-nothing batches) split into the pure rules (``rules``: shapes,
statuses, what a phase does to the entries, the trial of a batch; the one rule set both verifiers check) and each
database's SQL (``dialects``); per-account hash chains (``chain``), checkpoints, hold expiry, the after-commit
``events``, the verifier (``verify``) and the signed journal export with its offline verifier (``export``).
Public: ``open_account(_in)``, ``account_by_code``, ``get_account``, ``set_account_status``, ``post(_in)``,
``expire_holds``, ``make_checkpoint`` and the request builders in ``posting`` (``transfer``, ``hold``, ...).
May call: ``ledger.infra``, ``ledger.errors``, ``ledger.invariants``.
"""

# the room's public use cases, so that a door writes ``from ledger import journal``
from ledger.journal.accounts import (
    NEGATIVE_ALLOWED_KINDS,
    AccountView,
    CheckpointView,
    account_by_code,
    expire_holds,
    get_account,
    make_checkpoint,
    open_account,
    open_account_in,
    post,
    post_in,
    set_account_status,
)
