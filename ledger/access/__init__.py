"""Room ``access``: who is acting and what they may do.

Owns the tables ``org_units``, ``users``, ``role_grants``, ``merchants`` (``models``), ``web_sessions``,
``security_events`` and ``rate_counters``. Public: ``identity`` (``Actor``, scopes on the org tree, creating users
and grants), ``policy`` (every "may X do Y" rule, and the principals: ``Actor``, ``TillDevice``, ``SYSTEM``),
``passwords`` (the one argon2id hasher, for passwords and bean-card PINs), ``security`` (the security log, sign-in throttles and rate limits), ``sessions`` (web
sessions), ``tokens`` (API access tokens).
May call: ``ledger.journal`` (a new user's wallet is an account), ``ledger.infra``, ``ledger.errors``.
"""
