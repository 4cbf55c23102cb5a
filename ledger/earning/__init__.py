"""Room ``earning``: beans earned for verified work.

Owns the tables ``claims`` and ``awards`` (``models``): claims for tips and patrols, verification by officers in
scope, direct awards with a second approval above a threshold, voids and reversals, donations to the fund, budget
allocations to communities, caps, leaderboards and the bulk award import.
May call: ``ledger.access``, ``ledger.journal``, ``ledger.infra``, ``ledger.errors``. Not the other capability rooms.
"""

# the room's public use cases, so that a door writes ``from ledger import earning``
from ledger.earning.core import (
    IMPORT_COLUMNS,
    AwardView,
    ClaimView,
    EarningRules,
    FundView,
    ImportLine,
    ImportReport,
    allocate_budget,
    approve_award,
    award_directly,
    budget_balances,
    claim_amount,
    community_leaderboard,
    community_of,
    ensure_budget_account_in,
    fund_position,
    get_award,
    get_claim,
    import_awards,
    list_awards,
    list_claims,
    parse_award_csv,
    record_donation,
    reject_claim,
    reverse_award,
    rules_of,
    submit_claim,
    verify_claim,
    void_award,
    volunteer_leaderboard,
)
