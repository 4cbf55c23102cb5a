"""Room ``people``: a person's own profile and the administrator's user and role management.

Owns no tables of its own (it writes ``users`` and ``role_grants`` through ``ledger.access``).
May call: ``ledger.access``, ``ledger.infra``, ``ledger.errors``. Not the other capability rooms.
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
