"""Room ``infra``: what every other room stands on.

Owns: engines and transactions (``db``: ``make_engine``, ``run_in_transaction``, ``utc_from_db``), ``Books`` (one
database, one key store, one clock; ``Books.run`` opens the one transaction of a use case), the Ed25519 key store
(``keys``), the declarative ``Base`` with its naming convention and ``UTCDateTime`` (every instant stored and
compared in UTC, ``base``), ONE typed ``Settings`` with ONE ``Calendar`` (``settings``: rules, limits,
retention, the district's local days, weeks and months; validated when built, ``books.settings`` /
``books.calendar``), the idempotency store (``idempotency``: the table ``idempotency_records``,
``idempotent``, ``Answer``) and the one CSV writer that keeps spreadsheet formulas out of every export
(``csvsafe``).
May call: ``ledger.errors``, ``ledger.invariants`` only.
"""
