"""Room ``patrols``: 卫星布防, patrol deployment.

Owns the tables ``patrol_posts``, ``patrol_series``, ``patrol_shifts``, ``patrol_signups``,
``patrol_used_codes`` (``models``): posts on the org tree with their printed signs, shifts (one-off and
recurring), sign-ups, check-in and check-out with proof of presence (the leader's rotating code, or the post
sign with the phone's location), attendance paid in beans once from the community budget, and the coverage
board. A paid or recorded attendance adds a service record through ``ledger.service`` (which owns the
records and the certificates); reminders before a shift and notices of an edited shift go through the
notification outbox (``ledger.notify``, ``reminders``). Who may do what is in ``rules``.
May call: ``ledger.service``, ``ledger.notify``, ``ledger.access``, ``ledger.journal``, ``ledger.infra``,
``ledger.errors``. Not the other capability rooms.
"""

# the room's public use cases, so that a door writes ``from ledger import patrols``
from ledger.patrols.attendance import (
    PostCoverage,
    Proof,
    awaiting,
    check_in,
    check_out,
    close_shift,
    coverage,
    leader_code,
    leader_code_used,
    refuse_attendance,
    verify_attendance,
)
from ledger.patrols.core import (
    PostView,
    SeriesView,
    ShiftView,
    SignupView,
    acknowledge_change,
    confirm_signup,
    create_post,
    edit_shift,
    extend_series,
    get_shift,
    list_posts,
    list_shifts,
    pending_signups,
    post_sign,
    publish_series,
    publish_shift,
    roster,
    sign_up,
    withdraw,
)
from ledger.patrols.reminders import send_reminders
from ledger.patrols.rules import PatrolRules, rules_of
