"""Room ``people``: a person's own profile and password, the administrator's user and role management, and
recruitment (志愿者征集): calls for volunteers, residents' own sign-ups, the community's approval.

Owns the tables ``recruitment_calls``, ``signups``, ``consents``, ``signup_challenges`` and ``reset_codes``
(``models``); writes ``users`` and ``role_grants`` through ``ledger.access`` and pays a starter award through
``ledger.journal``. Public: ``accounts`` (profile, register, grant/revoke), ``recruitment`` (calls, sign-up,
approve/decline), ``passwords`` (change, one-time reset codes).
May call: ``ledger.access``, ``ledger.journal``, ``ledger.infra``, ``ledger.errors``. Not the other capability rooms.
"""

# the room's public use cases, so that a door writes ``from ledger import people``
from ledger.people.accounts import (
    DISTRICT_WIDE,
    MERCHANT_SCOPED,
    MIN_PASSWORD,
    ORG_SCOPED,
    get_profile,
    grant_role,
    list_org_units,
    register_user,
    revoke_role,
    update_profile,
)
