"""Room ``patrols``: 卫星布防, patrol deployment.

Owns the tables ``patrol_posts``, ``patrol_series``, ``patrol_shifts``, ``patrol_signups``,
``patrol_used_codes``, ``service_records`` and ``service_certificates`` (``models``): posts on the org tree
with their printed signs, shifts (one-off and recurring), sign-ups, check-in and check-out with proof of
presence (``proofs``: the leader's rotating code, or the post sign with the phone's location), attendance
paid in beans once from the community budget, service records kept apart from beans, the coverage board
and signed service certificates (``certificates``). Who may do what is in ``rules``.
May call: ``ledger.access``, ``ledger.journal``, ``ledger.infra``, ``ledger.errors``. Not the other capability rooms.
"""

# the room's public use cases, so that a door writes ``from ledger import patrols``
from ledger.patrols.attendance import (
    PostCoverage,
    Proof,
    ServiceRecordView,
    awaiting,
    check_in,
    check_out,
    close_shift,
    coverage,
    leader_code,
    leader_code_used,
    my_service_records,
    refuse_attendance,
    verify_attendance,
)
from ledger.patrols.certificates import Certificate, certificate_pdf, issue_certificate, verify_certificate
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
from ledger.patrols.rules import PatrolRules, rules_of
