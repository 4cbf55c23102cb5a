"""Room ``earning``: beans earned for verified work.

Owns the tables ``claims``, ``awards`` and ``reserves`` (``models``): claims for tips and patrols, verification by
officers in scope, direct awards with a second approval above a threshold, voids and reversals, donations to the
fund, budget allocations to communities, caps, leaderboards and the bulk award import; and **reserves**, beans of a
community budget set aside for claims to be paid from (``reserves``): a claim carries the reserve it is paid from
and earning posts part of that hold through the journal, so earning knows a generic "claim funded by a hold" and
nothing of what the room above (the radar, whose notices' bounties are reserves and whose answers are claims)
calls it. Every award, from a reserve or not, counts toward the caps and needs a second officer above the
threshold.
May call: ``ledger.notify``, ``ledger.access``, ``ledger.journal``, ``ledger.infra``, ``ledger.errors``. Not the
other capability rooms; the radar stands above it.
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
    claim_view_in,
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
    submit_tip_in,
    verify_claim,
    void_award,
    volunteer_leaderboard,
)
from ledger.earning.reserves import (
    ReserveView,
    change_reserve_in,
    open_reserve_in,
    release_reserve_in,
)
from ledger.earning.reserves import view_in as reserve_view_in
